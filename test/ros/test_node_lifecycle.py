"""depth_pose_lifecycle_node driven through its transitions over lifecycle_msgs services on a real DDS graph.

The node runs in a child process; this process is the lifecycle manager (ChangeState / GetState
clients), the camera (image + camera_info) and the consumer of the outputs. Walk: unconfigured (no
subscriptions, no outputs) -> configure (model loaded, still silent) -> activate (frames in, outputs
out, static TF) -> deactivate (subscriptions gone, frames sent now give nothing) -> activate (outputs
again) -> deactivate -> cleanup (publishers gone) -> configure again. A second child with ``device:
cuda`` on a machine without CUDA fails ``configure`` with one error line and stays unconfigured.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
from nav_msgs.msg import Odometry
from rclpy.node import Node
from ros_harness import node_follows, spin_until, start_child
from sensor_msgs.msg import CameraInfo, Image
from tf2_msgs.msg import TFMessage

from depth_pose_ros.nets.checkpoint import save_model
from depth_pose_ros.nets.config import NetConfig
from depth_pose_ros.nets.model import build_model
from depth_pose_ros.ros.convert import make_camera_info, numpy_to_image_msg, stamp_to_ns
from depth_pose_ros.ros.qos import latched_qos, reliable_qos
from depth_pose_ros.utils.paths import REPO_ROOT

pytestmark = pytest.mark.ros

H, W = 96, 320
K = np.array([[300.0, 0.0, 160.0], [0.0, 300.0, 48.0], [0.0, 0.0, 1.0]])
SCENE = (np.random.default_rng(0).random((H, W + 200, 3)) * 255).astype(np.uint8)


def _lifecycle_node(env: dict, tmp_path: Path, name: str, *params: str):
    args = ["-m", "depth_pose_ros.ros.depth_pose_lifecycle_node", "--ros-args", "--params-file",
            str(REPO_ROOT / "config" / "default.yaml"), "-p", "input.height:=64", "-p", "input.width:=192",
            "-p", "num_threads:=1", "-p", "flow_source:=dis", "-p", "diagnostics.period_s:=0.25"]
    for p in params:
        args += ["-p", p]
    if name != "depth_pose_node":
        args += ["-r", f"__node:={name}"]
    return start_child(args, env, tmp_path / f"{name}.log")


class _Manager:
    """Lifecycle client of one node, plus a camera and subscribers of the node's outputs."""

    def __init__(self, executor, proc, name: str) -> None:
        self.executor, self.proc = executor, proc
        self.node = Node(f"manager_of_{name}", context=executor.context)
        executor.add_node(self.node)
        self.change = self.node.create_client(ChangeState, f"/{name}/change_state")
        self.get = self.node.create_client(GetState, f"/{name}/get_state")
        self.image_pub = self.node.create_publisher(Image, "/image", reliable_qos())
        self.info_pub = self.node.create_publisher(CameraInfo, "/camera_info", reliable_qos())
        self.depth: list[Image] = []
        self.odom: list[Odometry] = []
        self.static: list[TFMessage] = []
        self.depth_sub = self.node.create_subscription(Image, "/depth", self.depth.append, reliable_qos(100))
        self.node.create_subscription(Odometry, "/odom", self.odom.append, reliable_qos(100))
        self.node.create_subscription(TFMessage, "/tf_static", self.static.append, latched_qos())
        self.frame = 0

    def wait(self, condition, timeout: float, what: str) -> None:
        assert spin_until(self.executor, condition, timeout, children=[self.proc]), \
            f"timed out waiting for {what}; node output:\n{self.proc.output()}"

    def state(self) -> int:
        """The node's state. get_state is idempotent, so a request is repeated when its response does not
        come: a server can answer before it has discovered the client's response reader, and Fast DDS then
        drops the response ("failed to send response"); the first exchange also completes that discovery
        for the change_state calls that follow."""
        self.wait(self.get.service_is_ready, 60.0, "get_state")
        for _ in range(6):
            future = self.get.call_async(GetState.Request())
            if spin_until(self.executor, future.done, 5.0, children=[self.proc]):
                return future.result().current_state.id
        raise AssertionError(f"no get_state response to 6 requests; node output:\n{self.proc.output()}")

    def transition(self, transition_id: int, timeout: float = 120.0) -> bool:
        self.wait(self.change.service_is_ready, 60.0, "change_state")
        future = self.change.call_async(ChangeState.Request(transition=Transition(id=transition_id)))
        self.wait(future.done, timeout, f"transition {transition_id}")
        return future.result().success

    def send(self, count: int) -> list[int]:
        """Publish ``count`` frames (camera panning 2 px per frame, 10 Hz stamps); returns their stamps."""
        stamps = []
        for _ in range(count):
            i, self.frame = self.frame, self.frame + 1
            stamp = 100.0 + 0.1 * i
            self.info_pub.publish(make_camera_info(K, W, H, stamp, "cam_optical"))
            self.image_pub.publish(numpy_to_image_msg(np.ascontiguousarray(SCENE[:, 2 * i: 2 * i + W]), "rgb8",
                                                      stamp, "cam_optical"))
            stamps.append(round(stamp * 1e9))
            spin_until(self.executor, lambda: False, 0.15)
        return stamps


def test_lifecycle_transitions_gate_the_outputs(ros_env, executor, tmp_path):
    torch.manual_seed(0)
    checkpoint = tmp_path / "seeded.safetensors"
    save_model(checkpoint, build_model(NetConfig.from_dict({"encoder": {"width": 0.25}})))
    proc = _lifecycle_node(ros_env, tmp_path, "depth_pose_node", f"checkpoint:={checkpoint}")
    bad = None
    if not torch.cuda.is_available():
        bad = _lifecycle_node(ros_env, tmp_path, "depth_pose_bad", f"checkpoint:={checkpoint}", "device:=cuda")
    try:
        m = _Manager(executor, proc, "depth_pose_node")
        assert m.state() == State.PRIMARY_STATE_UNCONFIGURED
        assert m.image_pub.get_subscription_count() == 0 and m.depth_sub.get_publisher_count() == 0

        assert m.transition(Transition.TRANSITION_CONFIGURE)
        assert m.state() == State.PRIMARY_STATE_INACTIVE
        m.wait(lambda: m.depth_sub.get_publisher_count() > 0, 30.0, "the (inactive) depth publisher")
        assert m.image_pub.get_subscription_count() == 0  # nothing is taken in while inactive

        assert m.transition(Transition.TRANSITION_ACTIVATE)
        assert m.state() == State.PRIMARY_STATE_ACTIVE
        m.wait(lambda: node_follows(m.node, m.image_pub) and node_follows(m.node, m.info_pub),
               30.0, "the node's subscriptions (following the camera's QoS)")
        first = m.send(4)
        m.wait(lambda: len(m.odom) >= 3, 30.0, "outputs while active")
        assert {stamp_to_ns(o.header.stamp) for o in m.odom} <= set(first)
        m.wait(lambda: m.static, 10.0, "static TF")
        assert {(t.header.frame_id, t.child_frame_id) for t in m.static[-1].transforms} == \
            {("base_link", "camera_link"), ("camera_link", "cam_optical")}

        assert m.transition(Transition.TRANSITION_DEACTIVATE)
        assert m.state() == State.PRIMARY_STATE_INACTIVE
        m.wait(lambda: m.image_pub.get_subscription_count() == 0, 30.0, "subscriptions removed")
        n_depth, n_odom = len(m.depth), len(m.odom)
        m.send(4)
        spin_until(executor, lambda: False, 1.0, children=[proc])
        assert (len(m.depth), len(m.odom)) == (n_depth, n_odom), "outputs while inactive"

        assert m.transition(Transition.TRANSITION_ACTIVATE)
        m.wait(lambda: node_follows(m.node, m.image_pub) and node_follows(m.node, m.info_pub), 30.0,
               "subscriptions again")
        again = m.send(4)
        m.wait(lambda: len(m.odom) >= n_odom + 3, 30.0, "outputs after re-activation")
        assert {stamp_to_ns(o.header.stamp) for o in m.odom[n_odom:]} <= set(again)
        assert len(m.depth) > n_depth

        assert m.transition(Transition.TRANSITION_DEACTIVATE)
        assert m.transition(Transition.TRANSITION_CLEANUP)
        assert m.state() == State.PRIMARY_STATE_UNCONFIGURED
        m.wait(lambda: m.depth_sub.get_publisher_count() == 0, 30.0, "publishers destroyed by cleanup")
        assert m.transition(Transition.TRANSITION_CONFIGURE)  # a cleaned-up node configures again
        assert m.state() == State.PRIMARY_STATE_INACTIVE

        if bad is not None:
            b = _Manager(executor, bad, "depth_pose_bad")
            assert not b.transition(Transition.TRANSITION_CONFIGURE)
            assert b.state() == State.PRIMARY_STATE_UNCONFIGURED
            log = bad.output()
            assert log.count("configure failed: device 'cuda': CUDA is not available") == 1, log
            assert "Traceback" not in log, log
    finally:
        rc = proc.stop()
        if bad is not None:
            assert bad.stop() == 0, bad.output()
    log = proc.output()
    assert rc == 0, log
    assert "Traceback" not in log and "[ERROR]" not in log, log
