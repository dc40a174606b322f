"""Parameter tables of the project's nodes: one :class:`ParamSpec` per parameter, declared by one helper.

Why a table: each node's parameters (name, default, description) are written once, as data, and
declared with their descriptions (``ros2 param describe``) by :func:`declare_parameters` instead of a
declaring closure copied into every node. ``depth_pose_node`` keeps its table in
:mod:`depth_pose_ros.ros.node_params`; the bag player and recorder keep theirs beside their node.

Importing this module needs no ROS (``node_params`` and the offline tools use :class:`ParamSpec` without
ROS); :func:`declare_parameters` imports ``rcl_interfaces`` when called, on a node.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ParamSpec:
    """One ROS parameter: its name, default (which also fixes its type) and description.

    The default may be an ``rclpy.Parameter.Type`` instead of a value: the parameter then has that type
    and no default (unset: ``None``, or ``[]`` for an array type, from :func:`declare_parameters`).
    """

    name: str
    default: Any
    description: str


def declare_parameters(node: Any, specs: Iterable[ParamSpec], *, read_only: bool = True,
                       dynamic_typing: bool = False) -> dict[str, Any]:
    """Declare every parameter of ``specs`` on the rclpy ``node``; returns name -> value.

    Without ``dynamic_typing`` rclpy holds each parameter to the type of its default (a value of another
    type raises ``rclpy.exceptions.ParameterException``), so the values come back typed.
    """
    from rcl_interfaces.msg import ParameterDescriptor  # ROS only when declaring, see the module docstring
    from rclpy.parameter import Parameter

    values: dict[str, Any] = {}
    for spec in specs:
        descriptor = ParameterDescriptor(description=spec.description, read_only=read_only,
                                         dynamic_typing=dynamic_typing)
        value = node.declare_parameter(spec.name, spec.default, descriptor).value
        if value is None and isinstance(spec.default, Parameter.Type) and spec.default.name.endswith("_ARRAY"):
            value = []  # an array parameter declared by type alone and not set: empty
        values[spec.name] = value
    return values
