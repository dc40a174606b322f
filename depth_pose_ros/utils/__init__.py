"""Small utilities used across layers: typed YAML configs (``config``), where things are on disk
(``paths``), image decoding and conversion (``image_codec``, ``image``) and visualisation (``viz``).
None of them imports torch or ROS."""
