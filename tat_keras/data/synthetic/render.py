"""Face and eye rendering, and the camera that records them.

`RecordingRenderer` draws one recording's frames: a room behind the subject,
the shaded face (hair, neck, nose, mouth), both eyes (brow and its shadow,
lids of the subject's type, a sclera that is never paper white, an iris and
a pupil that narrows in bright light, the corneal reflection of the lit
screen), glasses where the subject wears them (rims and the screen's
reflection in the lenses; `geometry` shifts the eye seen through a lens),
then the camera: sensor noise, exposure and white balance that drift within
the recording, clipping, and whole-frame shake blur.

Example:

>>> import numpy as np
>>> from tat_keras.data.synthetic import config as config_lib
>>> from tat_keras.data.synthetic import plan, scene, subjects
>>> rng = np.random.default_rng(0)
>>> config = config_lib.SyntheticConfig(dots_per_recording=1, frames_per_dot=1)
>>> subject = subjects.sample_subject(rng)
>>> conditions = scene.sample_conditions(rng, config)
>>> frame = plan.plan_recording(rng, config, "train", subject, conditions)[0]
>>> renderer = RecordingRenderer(rng, subject, conditions)
>>> renderer.render(frame, renderer.geometry(frame)).dtype
dtype('uint8')
"""

import math

import numpy as np
from PIL import Image

from tat_keras.data.synthetic import drawing
from tat_keras.data.synthetic import geometry
from tat_keras.data.synthetic import plan
from tat_keras.data.synthetic import scene

soft = drawing.soft

# Crease height above the lash line (eye-scale units) and its strength, by
# lid type; a hooded lid's fold hangs low and casts a shadow on the lid.
_CREASE = {"crease": (0.35, 0.18), "hooded": (0.12, 0.32), "monolid": (0.0, 0.0)}


class RecordingRenderer:
    """Renders the frames of one recording.

    Args:
      rng: np.random.Generator. draws the background and the noise tile.
      subject: Subject.
      conditions: Conditions.
    """

    def __init__(self, rng, subject, conditions):
        self.subject = subject
        self.conditions = conditions
        gain = np.asarray(conditions.tint, np.float32)
        self.skin = np.asarray(subject.skin_rgb, np.float32) * gain
        self.hair = np.asarray(subject.hair_rgb, np.float32) * gain
        self.iris = np.asarray(subject.iris_rgb, np.float32) * gain
        self.sclera = np.asarray(subject.sclera_rgb, np.float32) * gain
        self.light = np.asarray(conditions.light, np.float32)
        self.pupil_ratio = float(
            np.clip(subject.pupil_ratio * (1.45 - 0.75 * conditions.illuminance), 0.2, 0.62)
        )
        self.background = self._make_background(
            rng, gain * conditions.background_gain, conditions.noise_sigma
        )
        self.noise = rng.standard_normal(
            (3, plan.NOISE_TILE, plan.NOISE_TILE), dtype=np.float32
        )
        self.noise *= conditions.noise_sigma

    @staticmethod
    def _make_background(rng, gain, noise_sigma):
        """A smooth room-like background with a few sharp-edged shapes."""
        size = max(geometry.LANDSCAPE_SIZE)
        coarse = rng.uniform(30, 220, (4, 4, 3))
        coarse = (0.55 * coarse.mean(axis=-1, keepdims=True) + 0.45 * coarse).astype(
            np.uint8
        )  # Muted colours, as in a room.
        image = np.asarray(
            Image.fromarray(coarse).resize((size, size), Image.BICUBIC), np.float32
        )
        for _ in range(rng.integers(2, 5)):
            x0, y0 = rng.integers(0, size, 2)
            w, h = rng.integers(40, size // 2, 2)
            image[y0 : y0 + h, x0 : x0 + w] = 0.5 * image[
                y0 : y0 + h, x0 : x0 + w
            ] + 0.5 * rng.uniform(20, 235, 3)
        image *= gain
        image += rng.standard_normal(image.shape, dtype=np.float32) * noise_sigma
        return np.clip(image + 0.5, 0, 255).astype(np.uint8)

    def geometry(self, frame):
        """Projects the head and eyes of a frame (see `geometry.project_head`)."""
        device = self.conditions.device
        return geometry.project_head(
            self.subject,
            device,
            frame,
            scene.screen_centre_cm(device, frame.orientation),
            scene.screen_size_cm(device, frame.orientation),
        )

    def render(self, frame, geo):
        """Returns the frame as uint8 (H, W, 3)."""
        width, height = geo["size"]
        image = np.array(self.background[:height, :width])
        a, b = geo["head_axes"]
        hu, hv = geo["head"]
        reach = max(a, b) * 1.12
        x0 = max(int(hu - reach), 0)
        x1 = min(int(hu + reach) + 1, width)
        y0 = max(int(hv - reach), 0)
        y1 = min(int(hv + 1.6 * b) + 1, height)
        if x0 < x1 and y0 < y1:
            origin = (x0, y0)
            patch = np.ascontiguousarray(
                image[y0:y1, x0:x1].transpose(2, 0, 1), dtype=np.float32
            )
            shade = self._draw_head(patch, origin, geo)
            for eye in geo["eyes"]:
                self._draw_eye(patch, origin, eye, geo["roll"], shade, frame.opening)
            self._draw_features(patch, origin, geo)
            if self.subject.glasses is not None:
                self._draw_glasses(patch, origin, geo, shade, frame)
            oy, ox = frame.noise_offset
            patch += self.noise[:, oy : oy + patch.shape[1], ox : ox + patch.shape[2]]
            patch += 0.5
            np.clip(patch, 0, 255, out=patch)
            image[y0:y1, x0:x1] = patch.astype(np.uint8).transpose(1, 2, 0)
        return self._camera(image, frame)

    def _camera(self, image, frame):
        """Exposure and white balance (with clipping), then shake blur."""
        lut = []
        levels = np.arange(256, dtype=np.float32)
        for channel in range(3):
            gain = frame.exposure * frame.white_balance[channel]
            lut.extend(np.clip(levels * gain + 0.5, 0, 255).astype(np.uint8).tolist())
        image = np.asarray(Image.fromarray(image).point(lut))
        if frame.shake is not None:
            planar = image.transpose(2, 0, 1).astype(np.float32)
            blurred = drawing.box_blur(planar, *frame.shake)
            image = np.clip(blurred + 0.5, 0, 255).astype(np.uint8).transpose(1, 2, 0)
        return np.ascontiguousarray(image)

    def _draw_head(self, patch, origin, geo):
        """Hair, neck and the shaded face oval; returns the shading function."""
        subject = self.subject
        cond = self.conditions
        # Python floats throughout: a NumPy float64 scalar would promote the
        # float32 images to float64.
        a, b = (float(v) for v in geo["head_axes"])
        angle = float(geo["roll"])
        c, s = math.cos(angle), math.sin(angle)
        height, width = patch.shape[1:]
        head_u, head_v = (float(v) for v in geo["head"])
        # The smooth head layer is computed on a half-resolution grid (sample j
        # sits at pixel 2j + 0.5) and upsampled bilinearly; eyes and features
        # are drawn at full resolution on top.
        half_height, half_width = -(-height // 2), -(-width // 2)
        xs = np.arange(half_width, dtype=np.float32) * 2 + (origin[0] + 0.5 - head_u)
        ys = np.arange(half_height, dtype=np.float32) * 2 + (origin[1] + 0.5 - head_v)
        xs, ys = xs[None, :], ys[:, None]
        p = (xs * c + ys * s) * (1.0 / a)  # Across the face, image right.
        q = (ys * c - xs * s) * (1.0 / b)  # Down the face.
        ea, eb = a / 2, b / 2  # Sizes in half-resolution pixels, for edges.
        r2 = p * p + q * q
        du = float(geo["hair"][0]) - head_u
        dv = float(geo["hair"][1]) - head_v
        hp = p - (du * c + dv * s) / a
        hq = q - (dv * c - du * s) / b
        hair_r2 = hp * hp * (1 / 1.07**2) + hq * hq * (1 / 0.98**2)
        hair_alpha = soft(1.0 - hair_r2, 0.5 * ea) * soft(
            subject.hair_length - hq, 0.25 * eb
        )
        neck_alpha = (
            soft(0.42 - np.abs(p), 0.5 * ea)
            * soft(q - 0.4, 0.5 * eb)
            * soft(1.55 - q, 0.1 * eb)
        )
        face_alpha = soft(1.0 - r2, 0.5 * min(ea, eb))
        nz = np.sqrt(np.maximum(1.0 - r2, 0.0))
        lx, ly, lz = (float(v) for v in self.light)
        lit = np.maximum(p * lx - q * ly + nz * lz, 0.0)
        shading = cond.ambient + cond.diffuse * lit
        fringe = soft(-subject.hairline + 0.35 * p * p - q, 0.3 * eb)
        skin_weight = face_alpha * (1.0 - fringe)
        hair_weight = np.maximum(hair_alpha * (1.0 - face_alpha), 0.0) + (
            face_alpha * fringe
        )
        neck_weight = neck_alpha * (1.0 - face_alpha) * (1.0 - hair_weight)
        keep = 1.0 - skin_weight - hair_weight - neck_weight
        hair_light = 0.55 + 0.45 * shading
        neck_light = 0.65 * cond.ambient
        skin_light = skin_weight * shading + neck_weight * neck_light
        hair_light *= hair_weight

        def upsample(plane):
            image = Image.fromarray(plane).resize(
                (2 * half_width, 2 * half_height), Image.BILINEAR
            )
            return np.asarray(image)[:height, :width]

        keep, skin_light, hair_light = (
            upsample(plane) for plane in (keep, skin_light, hair_light)
        )
        for channel in range(3):
            plane = patch[channel]
            plane *= keep
            plane += skin_light * float(self.skin[channel])
            plane += hair_light * float(self.hair[channel])

        def shade_at(u, v):
            du, dv = u - head_u, v - head_v
            pp = (du * c + dv * s) / a
            qq = (dv * c - du * s) / b
            nn = math.sqrt(max(1 - pp * pp - qq * qq, 0.0))
            return cond.ambient + cond.diffuse * max(pp * lx - qq * ly + nn * lz, 0)

        return shade_at

    def _draw_features(self, patch, origin, geo):
        """Nose and mouth, as gains on the shaded skin."""
        subject = self.subject
        camera, world = geo["camera"], geo["world"]
        angle = geo["roll"]
        scale = geo["eyes"][0].scale
        bridge = camera.project(world(geometry.NOSE_BRIDGE))
        drawing.modulate_ellipse(
            patch, origin, bridge, (0.55 * scale, 1.9 * scale), angle, (0.9, 0.88, 0.88)
        )
        tip = camera.project(world(geometry.NOSE_TIP))
        drawing.modulate_ellipse(
            patch, origin, tip, (0.6 * scale, 0.45 * scale), angle, (1.08, 1.07, 1.06)
        )
        for sign in (1.0, -1.0):
            x, y, z = geometry.NOSTRIL
            nostril = camera.project(world((sign * x, y, z)))
            drawing.modulate_ellipse(
                patch,
                origin,
                nostril,
                (0.32 * scale, 0.18 * scale),
                angle,
                (0.45, 0.42, 0.42),
            )
        mouth = camera.project(world(geometry.MOUTH))
        half = subject.mouth_half_width_cm * scale
        drawing.modulate_ellipse(
            patch, origin, mouth, (half, 0.55 * scale), angle, (0.95, 0.66, 0.66)
        )
        drawing.modulate_ellipse(
            patch,
            origin,
            mouth,
            (0.95 * half, 0.09 * scale + 0.6),
            angle,
            (0.35, 0.3, 0.3),
        )

    def _draw_glasses(self, patch, origin, geo, shade_at, frame):
        """Rims, a bridge, and the lit screen's reflection in each lens."""
        glasses = self.subject.glasses
        roll = geo["roll"]
        scale = geo["eyes"][0].scale
        axes = (glasses.lens_half_width_cm * scale, glasses.lens_half_height_cm * scale)
        rim = np.asarray(glasses.rim_rgb, np.float32) * np.asarray(
            self.conditions.tint, np.float32
        )
        lenses = []
        for eye in geo["eyes"]:
            light = shade_at(*eye.lens)
            lenses.append(eye.lens)
            # The screen's reflection: a soft bright patch that moves with the
            # head's turn, not with the dot.
            yaw, pitch = frame.head_angles[:2]
            shift = np.array([-yaw, pitch]) * (0.02 * scale)
            glow = 255.0 * glasses.reflectance * self.conditions.screen_glow
            drawing.add_ellipse(
                patch,
                origin,
                eye.lens + shift,
                (0.55 * axes[0], 0.35 * axes[1]),
                roll,
                (0.9 * glow, 0.95 * glow, glow),
            )
            drawing.paint_ring(
                patch,
                origin,
                eye.lens,
                axes,
                roll,
                glasses.rim_cm * scale,
                rim * (0.55 + 0.45 * light),
            )
        middle = (lenses[0] + lenses[1]) / 2
        gap = float(np.hypot(*(lenses[1] - lenses[0]))) / 2 - axes[0]
        if gap > 0.5:
            drawing.paint_ring(
                patch,
                origin,
                middle - np.array([math.sin(roll), -math.cos(roll)]) * 0.2 * axes[1],
                (gap + 1.0, 0.35 * axes[1]),
                roll,
                glasses.rim_cm * scale,
                rim * 0.8,
            )

    def _draw_eye(self, patch, origin, eye, roll, shade_at, opening):
        """Brow and its shadow, lids, sclera, iris, pupil and the screen's glint."""
        subject = self.subject
        contrast = subject.eye_contrast
        scale = float(eye.scale)
        left, right = sorted((eye.inner, eye.outer), key=lambda p: p[0])
        mid_u, mid_v = (float(v) for v in (left + right) / 2)
        half_length = max(float(np.hypot(*(right - left))) / 2, 1.0)
        axis_u, axis_v = (float(v) for v in (right - left) / (2 * half_length))
        up_u, up_v = axis_v, -axis_u  # Perpendicular, towards the image top.

        def height_above(point):
            return float((point[0] - mid_u) * up_u + (point[1] - mid_v) * up_v)

        upper = height_above(eye.upper)
        lower = max(-height_above(eye.lower), 0.5)
        brow = geometry.BROW_HEIGHT * scale
        reach = max(1.3 * half_length, brow + 0.5 * scale) + 2
        window = drawing.ellipse_window(patch.shape, origin, (mid_u, mid_v), reach)
        if window is None:
            return
        x0, x1, y0, y1 = window
        xs = np.arange(x0, x1, dtype=np.float32)[None, :] + (origin[0] - mid_u)
        ys = np.arange(y0, y1, dtype=np.float32)[:, None] + (origin[1] - mid_v)
        t = (xs * axis_u + ys * axis_v) * (1.0 / half_length)
        s = xs * up_u + ys * up_v  # Pixels above the eye line.
        region = patch[:, y0:y1, x0:x1]
        light = shade_at(mid_u, mid_v)
        bell = np.maximum(1.0 - t * t, 0.0)
        if subject.lid_type == "monolid":
            upper_curve = upper * np.sqrt(bell)  # A flatter, fuller lid.
        else:
            upper_curve = upper * bell
        lower_curve = -lower * bell
        # Socket and brow shadow (deeper under light from above), the crease
        # or the fold of a hooded lid, lashes and the lower lid line.
        from_above = max(float(self.light[1]), 0.0)
        socket_depth = 0.1 + 0.18 * from_above + 0.06 * subject.age
        socket = socket_depth * np.exp(
            -(t * t) * 0.6 - ((s - 0.6 * scale) * (1.0 / (1.2 * scale))) ** 2
        )
        crease_height, crease_strength = _CREASE[subject.lid_type]
        crease = np.exp(
            -(
                ((s - upper_curve - crease_height * scale) * (1.0 / (0.1 * scale + 0.6)))
                ** 2
            )
        ) * (np.abs(t) < 1.0)
        lash_width = 0.08 * scale + 0.8
        edge = soft(1.05 - np.abs(t), 4.0)
        lash = soft(lash_width - np.abs(s - upper_curve - 0.3 * lash_width), 1.0)
        lower_line = soft(0.5 * lash_width - np.abs(s - lower_curve), 1.0)
        bag = subject.age * 0.12 * np.exp(
            -(((s - lower_curve + 0.35 * scale) * (1.0 / (0.2 * scale + 0.5))) ** 2)
        ) * (np.abs(t) < 0.9)
        gain = (
            (1.0 - socket)
            * (1.0 - crease_strength * crease)
            * (1.0 - bag)
            * (1.0 - contrast * (0.7 * lash + 0.25 * lower_line) * edge)
        )
        brow_curve = brow + 0.3 * scale * np.maximum(1.0 - 0.8 * t * t, 0.0)
        brow_alpha = (
            soft(0.22 * scale - np.abs(s - brow_curve), 0.7)
            * soft(1.15 - np.abs(t + 0.05), 3.0)
            * subject.brow_darkness
        )
        brow_keep = 1.0 - brow_alpha
        for channel in range(3):
            plane = region[channel]
            plane *= gain * brow_keep
            plane += brow_alpha * (float(self.hair[channel]) * (0.6 + 0.4 * light))
        # The visible eyeball between the lids, drawn over its bounding box.
        inside = (
            soft(upper_curve - s, 1.0)
            * soft(s - lower_curve, 1.0)
            * soft(1.0 - np.abs(t), half_length)
        )
        rows = np.flatnonzero(inside.max(axis=1) > 0)
        cols = np.flatnonzero(inside.max(axis=0) > 0)
        if rows.size == 0 or cols.size == 0:
            return
        r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        inside = inside[r0:r1, c0:c1]
        t, s = t[r0:r1, c0:c1], s[r0:r1, c0:c1]
        xs, ys = xs[:, c0:c1], ys[r0:r1]
        upper_curve = upper_curve[r0:r1, c0:c1]
        dx = xs - (float(eye.iris[0]) - mid_u)
        dy = ys - (float(eye.iris[1]) - mid_v)
        inverse = np.linalg.inv(eye.iris_matrix)
        alpha_ = dx * float(inverse[0, 0]) + dy * float(inverse[0, 1])
        beta_ = dx * float(inverse[1, 0]) + dy * float(inverse[1, 1])
        rho = np.sqrt(alpha_ * alpha_ + beta_ * beta_)
        iris_px = max(math.sqrt(abs(float(np.linalg.det(eye.iris_matrix)))), 1.0)
        iris_alpha = soft(1.0 - rho, iris_px)
        pupil_alpha = soft(self.pupil_ratio - rho, iris_px)
        angle = np.arctan2(beta_, alpha_)
        texture = 0.1 * contrast
        iris_shade = (
            (0.84 + texture * np.sin(17.0 * angle) + 0.8 * texture * np.sin(29.0 * angle + 1.0))
            * (1.0 - 1.8 * contrast * np.clip(rho - 0.75, 0, 0.25))
            * (0.7 + 0.3 * rho)
        )
        sclera_shade = 1.0 - 0.3 * np.clip(np.abs(t) - 0.35, 0, 1)
        # The corneal reflection of the lit screen (fixed to the device).
        gu, gv = float(eye.glint[0]) - mid_u, float(eye.glint[1]) - mid_v
        ga, gb = (max(float(v), 0.6) for v in eye.glint_axes)
        glint_r2 = ((xs - gu) * (1.0 / ga)) ** 2 + ((ys - gv) * (1.0 / gb)) ** 2
        glint_alpha = soft(1.0 - glint_r2, 1.5) * (rho < 1.3)
        glint_alpha *= self.conditions.screen_glow
        lid_shadow = 1.0 - (0.3 + 0.15 * from_above) * np.exp(
            -np.maximum(upper_curve - s, 0.0) * (1.0 / (0.12 * scale + 0.5))
        )
        pupil_dark = 0.6 + 0.32 * contrast
        ball_gain = (
            (1.0 - pupil_dark * pupil_alpha)
            * (1.0 - glint_alpha)
            * (lid_shadow * light)
            * inside
        )
        glint_add = glint_alpha * (235.0 * light) * lid_shadow * inside
        keep = 1.0 - inside
        eyeball = region[:, r0:r1, c0:c1]
        for channel in range(3):
            ball = (
                float(self.sclera[channel]) * sclera_shade * (1.0 - iris_alpha)
                + float(self.iris[channel]) * iris_shade * iris_alpha
            )
            plane = eyeball[channel]
            plane *= keep
            plane += ball * ball_gain + glint_add
