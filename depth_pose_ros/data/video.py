"""Video files (.mp4 .avi .mkv .mov ...) through OpenCV's VideoCapture (FFmpeg backend).

Random access on compressed video is the expensive part: decoders can only start at key frames.
The source keeps one open capture and remembers which frame it will decode next, so sequential access
(iteration, clip datasets walking forward) decodes every frame once; a short jump forward decodes
and drops the frames in between; anything else seeks with ``CAP_PROP_POS_FRAMES`` (which FFmpeg
resolves by decoding from the previous key frame).

The number of frames is counted once at construction by grabbing through the file (container frame
counts are estimates for some formats, and an overestimate would make the last indices fail).
Stamps are ``index / fps`` with ``fps`` from the argument or the container. Intrinsics come from
``K`` or are guessed (``source.guess_intrinsics``, with a warning).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Union

import cv2
import numpy as np

from depth_pose_ros.data.frame import Frame
from depth_pose_ros.data.source import (
    FrameSelection,
    FrameSource,
    as_K,
    decoded_to_rgb,
    guess_intrinsics,
    warn_guessed_intrinsics,
)

# Forward jumps up to this many frames are decoded through instead of seeking.
MAX_DECODE_THROUGH = 16


class VideoSource(FrameSource):
    """Frames of a video file.

    Args:
        path: the video file.
        K: intrinsics (3x3, (fx, fy, cx, cy) or YAML path); guessed with a warning when None.
        fps: frame rate override (else the container's, else 30).
        frames: sub-selection; gray: convert to gray on load.
    """

    uniform_size = True  # a video stream has one frame size
    fps: float  # always known: the override, the container's or 30
    _process_local = {"_cap": None, "_next": 0}  # VideoCapture cannot be pickled

    def __init__(self, path: Union[str, Path], K: Any = None, fps: Optional[float] = None,
                 frames: FrameSelection = None, gray: bool = False) -> None:
        super().__init__(frames=frames, gray=gray)
        path = Path(path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"video file not found: {path}")
        self.path = path
        self.name = f"video:{path.name}"
        cap = self._open()
        container_fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        count = 0
        while cap.grab():
            count += 1
        cap.release()
        if count == 0 or width <= 0 or height <= 0:
            raise ValueError(f"no decodable frames in video file (corrupt or unsupported codec): {path}")
        self.num_frames = count
        self.width, self.height = width, height
        self.fps = float(fps) if fps else (container_fps if 0 < container_fps < 1000 else 30.0)
        if K is not None:
            self.K = as_K(K)
        else:
            self.K = guess_intrinsics(width, height)
            warn_guessed_intrinsics(str(path), self.K)
        self.K_guessed = K is None
        self._cap: Optional[cv2.VideoCapture] = None
        self._next = 0  # index of the frame the open capture decodes next

    def _open(self) -> cv2.VideoCapture:
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            raise ValueError(f"cannot open video file (corrupt or unsupported format): {self.path}")
        return cap

    def _num_raw(self) -> int:
        return self.num_frames

    def _raw_stamps(self) -> np.ndarray:
        return np.arange(self.num_frames, dtype=np.float64) / self.fps

    def _read(self, raw_index: int) -> Frame:
        if self._cap is None:
            self._cap, self._next = self._open(), 0
        cap = self._cap
        if raw_index < self._next or raw_index - self._next > MAX_DECODE_THROUGH:
            cap.set(cv2.CAP_PROP_POS_FRAMES, float(raw_index))
            self._next = raw_index
        while self._next < raw_index:
            if not cap.grab():
                break
            self._next += 1
        ok, image = cap.read()
        if not ok or image is None:
            self.close()
            raise ValueError(f"{self.path}: could not decode frame {raw_index} of {self.num_frames}")
        self._next = raw_index + 1
        return Frame(image=decoded_to_rgb(image), K=self.K.copy(), stamp=raw_index / self.fps,
                     index=raw_index, source=self.name)

    def close(self) -> None:
        """Release the decoder (it is reopened on the next access)."""
        cap = getattr(self, "_cap", None)
        if cap is not None:
            cap.release()
        self._cap, self._next = None, 0
