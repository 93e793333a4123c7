"""Head and eye geometry: a pinhole camera sees a head looking at a dot.

World coordinates are GazeCapture's label frame: centimetres from the centre
of the front camera, x to the subject's right, y up, z from the device
towards the subject (the screen lies in z = 0). The head frame has its origin
at the midpoint between the eyeball centres, x to the subject's right, y up,
z to the back of the head (the face looks towards -z).

Both eyes rotate so that their visual axes pass through the point looked at;
the optical axis, which carries the iris, sits kappa degrees temporal of the
visual axis. The corneal glint is the reflection of the lit screen: it stays
with the device, not with the dot. Glasses shift and scale the apparent eye
about the lens centre.

Example:

>>> camera = Camera(focal=550.0, width=480, height=640)
>>> camera.project(np.array([0.0, 0.0, 30.0])).tolist()
[240.0, 320.0]
"""

import dataclasses
import math

import numpy as np

# Frame size in pixels (width, height) by orientation class.
LANDSCAPE_SIZE = (640, 480)
PORTRAIT_SIZE = (480, 640)

# Head anatomy in the head frame (cm).
HEAD_CENTRE = (0.0, -1.0, 6.0)  # Centre of the head's ellipsoid.
HEAD_HALF_DEPTH = 9.0  # Its semi-axis from face to back of the head.
OUTLINE_DEPTH = (0.0, 0.0, 2.0)  # Where the sides of the face are seen.
HAIR_CENTRE = (0.0, 0.6, 6.5)
FACE_BOX_CENTRE = (0.0, -2.4, -1.0)
NOSE_TIP = (0.0, -3.6, -3.2)
NOSE_BRIDGE = (0.0, -2.0, -2.2)
NOSTRIL = (0.75, -4.3, -2.4)
MOUTH = (0.0, -6.7, -2.0)
CORNER_DEPTH = -0.75  # z of the eye corners.
LID_DEPTH = -1.1  # z of the eyelid apexes.
BROW_HEIGHT = 1.75  # Brow above the eye line, in eye-scale units.


def frame_size(orientation):
    """(width, height) of a frame: portrait for orientations 1-2."""
    return PORTRAIT_SIZE if orientation <= 2 else LANDSCAPE_SIZE


def gaze_angles(vector):
    """Yaw and pitch (degrees) of a direction that points towards -z.

    Example:

    >>> [round(a, 6) for a in gaze_angles(np.array([0.0, 0.0, -1.0]))]
    [0.0, 0.0]
    """
    x, y, z = vector
    return (
        math.degrees(math.atan2(x, -z)),
        math.degrees(math.atan2(y, math.hypot(x, z))),
    )


def direction(yaw, pitch):
    """Unit vector towards -z turned by (yaw, pitch) degrees; inverse of
    `gaze_angles`."""
    yaw, pitch = math.radians(yaw), math.radians(pitch)
    return np.array(
        [
            math.sin(yaw) * math.cos(pitch),
            math.sin(pitch),
            -math.cos(yaw) * math.cos(pitch),
        ]
    )


def rotation(yaw, pitch, roll):
    """Head (or eye) frame to world: columns are the frame's x, y, z axes.

    The frame's forward direction (-z) points at (yaw, pitch) as measured by
    `gaze_angles`; roll turns the frame about that direction.
    """
    z_axis = -direction(yaw, pitch)
    yaw_rad, roll = math.radians(yaw), math.radians(roll)
    x_axis = np.array([math.cos(yaw_rad), 0.0, math.sin(yaw_rad)])
    y_axis = np.cross(z_axis, x_axis)
    x_rolled = math.cos(roll) * x_axis + math.sin(roll) * y_axis
    y_rolled = -math.sin(roll) * x_axis + math.cos(roll) * y_axis
    return np.stack([x_rolled, y_rolled, z_axis], axis=1)


class Camera:
    """Pinhole camera at the origin looking at the subject (+z).

    The image is not mirrored: the subject's right (+x) appears on the left
    of the image, and up (+y) at the top.
    """

    def __init__(self, focal, width, height):
        self.focal = focal
        self.cx = width / 2
        self.cy = height / 2

    def project(self, point):
        x, y, z = point
        return np.array([self.cx - self.focal * x / z, self.cy - self.focal * y / z])

    def unproject(self, u, v, depth):
        """The point at `depth` (z) that projects to pixel (u, v)."""
        return np.array(
            [(self.cx - u) * depth / self.focal, (self.cy - v) * depth / self.focal, depth]
        )

    def jacobian(self, point):
        """d(u, v) / d(x, y, z) at a point, shape (2, 3)."""
        x, y, z = point
        f = self.focal
        return np.array([[-f / z, 0.0, f * x / z**2], [0.0, -f / z, f * y / z**2]])


@dataclasses.dataclass
class EyeView:
    """One eye as the camera sees it (pixels), after any glasses."""

    centre: np.ndarray  # World position of the eyeball centre, cm.
    inner: np.ndarray  # Inner corner.
    outer: np.ndarray  # Outer corner.
    upper: np.ndarray  # Apex of the upper lid.
    lower: np.ndarray  # Lowest point of the lower lid.
    iris: np.ndarray  # Iris centre.
    iris_matrix: np.ndarray  # (2, 2): the iris as an image of the unit disc.
    glint: np.ndarray  # Corneal reflection of the screen's centre.
    glint_axes: tuple  # Semi-axes (u, v) of the reflected screen, pixels.
    scale: float  # Pixels per cm at the eye.
    lens: np.ndarray = None  # Lens centre when glasses are worn.


def _magnify(point, centre, factor):
    return centre + factor * (np.asarray(point) - centre)


def _outline_axes(subject, head_rotation, head_centre, head_scale):
    """Semi-axes (pixels) of the head's outline as the camera sees it.

    The head is an ellipsoid (face half width and height, `HEAD_HALF_DEPTH`);
    its outline widens towards its depth as the head turns away from the
    line of sight.
    """
    ray = head_centre / np.linalg.norm(head_centre)
    across = np.cross([0.0, 1.0, 0.0], ray)
    across /= np.linalg.norm(across)
    down = np.cross(ray, across)
    radii = np.array(
        [subject.face_half_width_cm, subject.face_half_height_cm, HEAD_HALF_DEPTH]
    )
    return tuple(
        float(head_scale * np.linalg.norm((direction_ @ head_rotation) * radii))
        for direction_ in (across, down)
    )


def project_head(subject, device, frame, screen_centre_cm, screen_size_cm):
    """Projects the head and both eyes of one frame.

    Args:
      subject: Subject.
      device: DeviceProfile (its focal length).
      frame: Frame of the recording plan (orientation, eye midpoint, head
        angles, the point looked at, fixational offset, lid opening).
      screen_centre_cm: (x, y) of the lit screen's centre in the label frame.
      screen_size_cm: (width, height) of the screen as the subject sees it.

    Returns:
      dict with `size`, `camera`, `world` (head frame -> world function),
      `eyes` (right eye then left eye, `EyeView`), `roll` (image angle of the
      eye line), `head` and `head_axes` (face oval), `hair`, `face_box_centre`
      and `face_box_side` (pixels).
    """
    width, height = frame_size(frame.orientation)
    camera = Camera(device.focal_px, width, height)
    head_rotation = rotation(*frame.head_angles)
    eye_mid = frame.eye_mid

    def world(point):
        return eye_mid + head_rotation @ np.asarray(point, np.float64)

    target = np.asarray(frame.look_at, np.float64)
    screen = np.array([screen_centre_cm[0], screen_centre_cm[1], 0.0])
    eyes = []
    for sign in (1.0, -1.0):  # Subject's right eye (+x) then left eye.
        x_eye = sign * subject.interocular_cm / 2
        centre = world((x_eye, 0.0, 0.0))
        yaw, pitch = gaze_angles(head_rotation.T @ (target - centre))
        optical_yaw = yaw + sign * subject.kappa_horizontal_deg + frame.drift[0]
        optical_pitch = pitch + subject.kappa_vertical_deg + frame.drift[1]
        axis = head_rotation @ direction(optical_yaw, optical_pitch)
        radius = subject.eyeball_radius_cm
        iris_radius = subject.iris_radius_cm
        iris_centre = centre + axis * math.sqrt(radius**2 - iris_radius**2)
        e1 = np.cross(axis, head_rotation[:, 1])
        e1 /= np.linalg.norm(e1)
        e2 = np.cross(e1, axis)
        jac = camera.jacobian(iris_centre)
        iris_matrix = np.stack([jac @ e1, jac @ e2], axis=1) * iris_radius
        # Corneal reflection of the screen: on the corneal sphere where the
        # normal halves the directions to the camera and to the screen's
        # centre; the reflected screen is a convex-mirror image of it.
        cornea = centre + 0.55 * axis
        to_camera = -cornea / np.linalg.norm(cornea)
        to_screen = screen - cornea
        screen_distance = np.linalg.norm(to_screen)
        normal = to_camera + to_screen / screen_distance
        normal /= np.linalg.norm(normal)
        glint = cornea + 0.78 * normal
        scale = device.focal_px / centre[2]
        mirror = 0.78 / (2.0 * screen_distance) * device.focal_px / glint[2]
        glint_axes = (
            max(0.5 * screen_size_cm[0] * mirror, 0.5),
            max(0.5 * screen_size_cm[1] * mirror, 0.5),
        )
        # Eyelids: the upper lid follows the vertical gaze in the head.
        sine = math.sin(math.radians(optical_pitch))
        upper = subject.upper_aperture_cm + 0.55 * radius * sine
        lower = subject.lower_aperture_cm - 0.15 * radius * sine
        upper = -0.8 * lower + (upper + 0.8 * lower) * frame.opening
        half = subject.eye_half_width_cm
        points = dict(
            inner=camera.project(world((x_eye - sign * half, 0.0, CORNER_DEPTH))),
            outer=camera.project(world((x_eye + sign * half, 0.1, CORNER_DEPTH))),
            upper=camera.project(world((x_eye + sign * 0.1, upper, LID_DEPTH))),
            lower=camera.project(world((x_eye, -lower, LID_DEPTH))),
            iris=camera.project(iris_centre),
            glint=camera.project(glint),
        )
        lens = None
        if subject.glasses is not None:
            # A lens in front of the eye scales the eye seen through it about
            # the lens centre (on the line from the camera to the eye).
            glasses = subject.glasses
            lens = camera.project(world((x_eye, 0.0, -glasses.vertex_cm - radius)))
            factor = glasses.magnification
            points = {k: _magnify(p, lens, factor) for k, p in points.items()}
            iris_matrix = iris_matrix * factor
            glint_axes = (glint_axes[0] * factor, glint_axes[1] * factor)
        eyes.append(
            EyeView(
                centre=centre,
                iris_matrix=iris_matrix,
                glint_axes=glint_axes,
                scale=scale,
                lens=lens,
                **points,
            )
        )
    head_centre = world(HEAD_CENTRE)
    right_eye, left_eye = eyes
    roll = math.atan2(
        left_eye.inner[1] - right_eye.inner[1], left_eye.inner[0] - right_eye.inner[0]
    )
    face_point = world(FACE_BOX_CENTRE)
    return dict(
        size=(width, height),
        camera=camera,
        world=world,
        eyes=eyes,
        roll=roll,
        head=camera.project(head_centre),
        # The outline is seen at the depth of the sides of the face, nearer
        # than the ellipsoid's centre.
        head_axes=_outline_axes(
            subject, head_rotation, head_centre, device.focal_px / world(OUTLINE_DEPTH)[2]
        ),
        hair=camera.project(world(HAIR_CENTRE)),
        face_box_centre=camera.project(face_point),
        face_box_side=1.9 * subject.face_half_width_cm * device.focal_px / face_point[2],
    )
