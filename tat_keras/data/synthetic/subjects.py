"""Subjects: eyes, eyelids, face, colours and glasses, drawn from a population.

Lengths in cm, angles in degrees. Nothing here comes from GazeCapture: the
ranges are textbook anthropometry (interocular distance, eyeball and iris
size, the kappa angle between the visual and optical axes).

Example:

>>> import numpy as np
>>> subject = sample_subject(np.random.default_rng(0))
>>> 5.0 < subject.interocular_cm < 7.5
True
>>> subject.lid_type in LID_TYPES
True
"""

import dataclasses

import numpy as np

# Upper-lid shapes: a visible crease; a hooded lid (a fold of skin over the
# crease and part of the lid); a monolid (no crease, a flatter, lower lid).
LID_TYPES = ("crease", "hooded", "monolid")
_LID_WEIGHTS = (0.55, 0.25, 0.2)

_IRIS_COLOURS = np.array(
    [
        (88, 54, 32),
        (52, 33, 22),
        (120, 92, 52),
        (82, 108, 72),
        (78, 108, 148),
        (108, 114, 120),
    ],
    np.float32,
)
_HAIR_COLOURS = np.array(
    [
        (24, 20, 18),
        (52, 37, 27),
        (92, 64, 40),
        (176, 142, 96),
        (150, 148, 145),
        (128, 64, 36),
    ],
    np.float32,
)
_RIM_COLOURS = np.array(
    [(20, 20, 22), (60, 40, 30), (120, 110, 100), (170, 160, 150), (90, 30, 40)],
    np.float32,
)
_SKIN_LIGHT = np.array([236, 200, 178], np.float32)
_SKIN_DARK = np.array([92, 60, 44], np.float32)
_SCLERA = np.array([236, 228, 220], np.float32)


@dataclasses.dataclass(frozen=True)
class Glasses:
    """A pair of glasses (cm), worn at `vertex_cm` in front of the corneas.

    Args:
      rim_cm: float. width of the rim.
      lens_half_width_cm, lens_half_height_cm: float. lens semi-axes.
      magnification: float. apparent size of the eye behind the lens (below 1
        for the minus lenses of short sight, above 1 for plus lenses).
      rim_rgb: tuple. rim colour.
      reflectance: float. strength of the screen's reflection in the lenses.
    """

    rim_cm: float
    lens_half_width_cm: float
    lens_half_height_cm: float
    magnification: float
    rim_rgb: tuple
    reflectance: float
    vertex_cm: float = 1.4


@dataclasses.dataclass(frozen=True)
class Subject:
    """A person: eyes, eyelids, face, colours and glasses."""

    interocular_cm: float
    eyeball_radius_cm: float
    kappa_horizontal_deg: float
    kappa_vertical_deg: float
    iris_radius_cm: float
    pupil_ratio: float  # Pupil radius / iris radius in even light.
    eye_half_width_cm: float
    upper_aperture_cm: float
    lower_aperture_cm: float
    lid_type: str
    age: float  # 0 young .. 1 old: lower contrast, heavier lids.
    eye_contrast: float  # 1: crisp lash line and white sclera; lower: softer.
    brow_darkness: float
    face_half_width_cm: float
    face_half_height_cm: float
    mouth_half_width_cm: float
    hairline: float
    hair_length: float
    head_follow: float  # Share of a far target's direction the head turns.
    skin_rgb: tuple
    iris_rgb: tuple
    hair_rgb: tuple
    sclera_rgb: tuple
    glasses: Glasses = None


def sample_glasses(rng):
    """Draws a pair of glasses.

    Args:
      rng: np.random.Generator.
    """
    short_sight = rng.uniform() < 0.7
    return Glasses(
        rim_cm=float(rng.uniform(0.12, 0.35)),
        lens_half_width_cm=float(rng.uniform(2.0, 2.6)),
        lens_half_height_cm=float(rng.uniform(1.4, 2.1)),
        magnification=float(
            rng.uniform(0.86, 0.97) if short_sight else rng.uniform(1.03, 1.1)
        ),
        rim_rgb=tuple(float(c) for c in _RIM_COLOURS[rng.integers(len(_RIM_COLOURS))]),
        reflectance=float(rng.uniform(0.04, 0.18)),
    )


def sample_subject(rng, glasses_fraction=0.25):
    """Draws a subject from population statistics.

    Args:
      rng: np.random.Generator.
      glasses_fraction: float. chance that the subject wears glasses.

    Example:

    >>> subject = sample_subject(np.random.default_rng(0))
    >>> 1.0 <= subject.eyeball_radius_cm <= 1.4
    True
    """

    def normal(mean, std, low, high):
        return float(np.clip(rng.normal(mean, std), low, high))

    tone = rng.uniform()
    skin = (1 - tone) * _SKIN_LIGHT + tone * _SKIN_DARK
    skin = skin * rng.normal(1.0, 0.03, 3)
    iris = _IRIS_COLOURS[rng.integers(len(_IRIS_COLOURS))]
    iris = iris * rng.normal(1.0, 0.08, 3)
    hair = _HAIR_COLOURS[rng.integers(len(_HAIR_COLOURS))]
    hair = hair * rng.normal(1.0, 0.06, 3)
    age = float(rng.uniform() ** 1.5)
    lid_type = LID_TYPES[rng.choice(len(LID_TYPES), p=_LID_WEIGHTS)]
    # Sclera: never paper white, yellower and closer to the skin with age.
    sclera = _SCLERA * (1.0 - rng.uniform(0.05, 0.2) - 0.12 * age) + skin * (
        rng.uniform(0.05, 0.2) + 0.1 * age
    )
    upper = normal(0.46, 0.06, 0.32, 0.6) - 0.08 * age
    if lid_type == "monolid":
        upper -= 0.06
    glasses = sample_glasses(rng) if rng.uniform() < glasses_fraction else None
    return Subject(
        interocular_cm=normal(6.3, 0.35, 5.4, 7.2),
        eyeball_radius_cm=normal(1.2, 0.05, 1.08, 1.32),
        kappa_horizontal_deg=normal(5.0, 1.5, 1.0, 9.0),
        kappa_vertical_deg=normal(1.0, 1.0, -2.0, 4.0),
        iris_radius_cm=normal(0.59, 0.025, 0.53, 0.65),
        pupil_ratio=float(rng.uniform(0.3, 0.42)),
        eye_half_width_cm=normal(1.4, 0.08, 1.2, 1.6),
        upper_aperture_cm=float(upper),
        lower_aperture_cm=normal(0.42, 0.04, 0.32, 0.52),
        lid_type=lid_type,
        age=age,
        eye_contrast=float(np.clip(rng.uniform(0.6, 1.0) - 0.2 * age, 0.45, 1.0)),
        brow_darkness=float(rng.uniform(0.4, 0.95)),
        face_half_width_cm=normal(7.0, 0.4, 6.0, 8.0),
        face_half_height_cm=normal(10.0, 0.6, 8.8, 11.4),
        mouth_half_width_cm=normal(2.4, 0.2, 1.9, 2.9),
        hairline=float(rng.uniform(0.35, 0.75)),
        hair_length=float(rng.uniform(-0.2, 0.9)),
        head_follow=float(rng.uniform(0.05, 0.25)),
        skin_rgb=tuple(float(c) for c in np.clip(skin, 30, 255)),
        iris_rgb=tuple(float(c) for c in np.clip(iris, 10, 255)),
        hair_rgb=tuple(float(c) for c in np.clip(hair, 5, 255)),
        sclera_rgb=tuple(float(c) for c in np.clip(sclera, 60, 255)),
        glasses=glasses,
    )
