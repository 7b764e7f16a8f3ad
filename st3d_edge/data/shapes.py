"""Parametric object families imitating MVTec 3D-AD parts, as height fields in metres.

Each ``make_<category>(rng)`` returns a :class:`Part`: a height field in the part's own frame
(origin at its centre, lying on the plane z = 0), exactly 0 outside the footprint. Sizes are drawn
per sample (a few centimetres across, like the real parts); pose and position are drawn by the
caller. Only the top surface matters: a camera above the table cannot see under a part.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from st3d_edge.data.camera import HeightField


@dataclass(frozen=True)
class Part:
    height: HeightField  # (u, v) in the part frame -> height >= 0, exactly 0 off the part
    radius: float  # the footprint lies within this distance of the part's origin
    top: float  # no height exceeds this


def _waves(rng: np.random.Generator, count: int, wavelength: tuple[float, float], amplitude: float):
    """A smooth random texture: plane waves with random directions, lengths and phases.

    ``amplitude`` bounds the texture's absolute value (so parts stay under their ``top``).
    """
    angles = rng.uniform(0, 2 * np.pi, count)
    k = 2 * np.pi / rng.uniform(*wavelength, count)
    kx, ky = k * np.cos(angles), k * np.sin(angles)
    phase = rng.uniform(0, 2 * np.pi, count)
    amp = amplitude / count

    def texture(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        out = np.zeros_like(u)
        for i in range(count):
            out += np.sin(kx[i] * u + ky[i] * v + phase[i])
        return amp * out

    return texture


def _harmonics(rng: np.random.Generator, orders: range, amplitude: float):
    """A smooth random function of the polar angle, for irregular round outlines."""
    a = rng.uniform(-1, 1, len(orders)) * amplitude / len(orders)
    phase = rng.uniform(0, 2 * np.pi, len(orders))

    def wobble(theta: np.ndarray) -> np.ndarray:
        out = np.zeros_like(theta)
        for ai, m, ph in zip(a, orders, phase, strict=True):
            out += ai * np.cos(m * theta + ph)
        return out

    return wobble


def _where(inside: np.ndarray, surface: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``surface(indices)`` on the pixels inside the footprint, exactly 0 elsewhere.

    Textures are costly; evaluating them only where the part is keeps rendering fast.
    """
    out = np.zeros(inside.shape)
    idx = np.flatnonzero(inside)
    if idx.size:
        out[idx] = surface(idx)
    return out


def _cap(radius: np.ndarray | float, d: np.ndarray) -> np.ndarray:
    """Height of a circular arc of ``radius`` at distance ``d`` from its axis (0 beyond it)."""
    return np.sqrt(np.maximum(radius * radius - d * d, 0.0))


def make_tire(rng: np.random.Generator) -> Part:
    """A toy tire lying flat: a boxy torus (superellipse cross-section) with tread blocks outside."""
    ring = rng.uniform(0.016, 0.020)
    half_width = rng.uniform(0.006, 0.008)
    thick = rng.uniform(0.010, 0.014)
    blocks = int(rng.integers(22, 34))
    groove = rng.uniform(0.0012, 0.0018)
    phase = rng.uniform(0, 2 * np.pi)
    p = 4.0

    def height(u, v):
        rho = np.hypot(u, v)
        d = np.abs(rho - ring) / half_width
        inside = d < 1.0
        profile = (1.0 - np.minimum(d, 1.0) ** p) ** (1.0 / p)
        top = thick / 2 + thick / 2 * profile
        outer = np.clip(((rho - ring) / half_width - 0.35) / 0.15, 0.0, 1.0)

        def surface(i):
            tread = np.clip((np.cos(blocks * np.arctan2(v[i], u[i]) + phase) - 0.2) / 0.4, 0.0, 1.0)
            return top[i] - groove * outer[i] * tread

        return _where(inside, surface)

    return Part(height, ring + half_width, thick)


def make_bagel(rng: np.random.Generator) -> Part:
    """A bagel: a squashed torus with a slightly oval, lumpy ring and a bumpy crust."""
    ring = rng.uniform(0.013, 0.017)
    tube = rng.uniform(0.007, 0.009)
    squash = rng.uniform(0.6, 0.8)
    oval = rng.uniform(0.9, 1.1)
    lumps = _harmonics(rng, range(2, 6), 0.12)
    crust = _waves(rng, 6, (0.004, 0.009), 0.0008)

    def height(u, v):
        uu = u * oval
        rho = np.hypot(uu, v)
        near = np.abs(rho - ring) < tube * 1.12  # the lumps never widen the tube more than this

        def surface(i):
            r = tube * (1.0 + lumps(np.arctan2(v[i], uu[i])))
            cap = _cap(r, rho[i] - ring)
            return np.where(cap > 0.0, np.maximum(squash * (r + cap) + crust(u[i], v[i]), 0.0), 0.0)

        return _where(near, surface)

    return Part(height, (ring + tube * 1.12) / min(oval, 1.0), squash * 2 * tube * 1.12 + 0.0008)


def make_cookie(rng: np.random.Generator) -> Part:
    """A cookie: a thin disc with an irregular outline, a rounded rim and a gently wavy top."""
    radius = rng.uniform(0.020, 0.025)
    thick = rng.uniform(0.005, 0.008)
    rim = thick * 0.5
    outline = _harmonics(rng, range(2, 7), 0.06)
    dough = _waves(rng, 8, (0.003, 0.010), 0.0008)

    def height(u, v):
        rho = np.hypot(u, v)
        edge = radius * (1.0 + outline(np.arctan2(v, u)))
        inset = edge - rho  # distance in from the rim along the radius
        rounded = thick - rim + _cap(rim, np.maximum(rim - inset, 0.0))
        return _where(inset > 0.0, lambda i: rounded[i] + dough(u[i], v[i]))

    return Part(height, radius * 1.06, thick + 0.0008)


def _rod(rng: np.random.Generator, length, r_start, r_end, bend, chamfer) -> Part:
    """A rod lying along u: radius tapering linearly, axis slightly bent, chamfered ends."""

    def height(u, v):
        half = length / 2
        along = np.clip((u + half) / length, 0.0, 1.0)
        r = r_start + (r_end - r_start) * along
        r_end_cut = r - np.maximum(np.abs(u) - (half - chamfer), 0.0)
        axis_v = bend * (u / half) ** 2
        cap = _cap(r_end_cut, v - axis_v)
        inside = (np.abs(u) < half) & (cap > 0.0)
        return np.where(inside, r + cap, 0.0)

    radius = np.hypot(length / 2, max(r_start, r_end) + abs(bend))
    return Part(height, float(radius), 2 * max(r_start, r_end))


def make_dowel(rng: np.random.Generator) -> Part:
    """A wooden dowel: a straight cylinder lying on its side with chamfered ends."""
    r = rng.uniform(0.004, 0.006)
    return _rod(rng, rng.uniform(0.035, 0.050), r, r, 0.0, rng.uniform(0.0008, 0.0015))


def make_carrot(rng: np.random.Generator) -> Part:
    """A carrot: a tapering, slightly bent rod."""
    thick = rng.uniform(0.006, 0.0085)
    return _rod(
        rng,
        rng.uniform(0.040, 0.055),
        thick,
        thick * rng.uniform(0.3, 0.45),
        rng.uniform(-0.004, 0.004),
        0.002,
    )


def make_foam(rng: np.random.Generator) -> Part:
    """A foam block: a rounded-corner box with rounded top edges, a sagging top and a porous texture."""
    a = rng.uniform(0.016, 0.022)
    b = rng.uniform(0.012, 0.018)
    tall = rng.uniform(0.012, 0.018)
    edge = 0.002
    sag = rng.uniform(0.0, 0.0008)
    pores = _waves(rng, 10, (0.0015, 0.004), 0.0008)
    p = 8.0

    def height(u, v):
        q = ((np.abs(u) / a) ** p + (np.abs(v) / b) ** p) ** (1.0 / p)
        inset = (1.0 - q) * min(a, b)  # about the distance in from the side walls
        rounded = tall - edge + _cap(edge, np.maximum(edge - inset, 0.0))
        dome = -sag * (1.0 - np.minimum(q, 1.0) ** 2)
        return _where(q < 1.0, lambda i: rounded[i] + dome[i] + pores(u[i], v[i]))

    return Part(height, float(np.hypot(a, b)), tall + 0.0008)


def make_potato(rng: np.random.Generator) -> Part:
    """A potato: a raised half-ellipsoid with a lumpy outline and surface."""
    a = rng.uniform(0.018, 0.025)
    b = rng.uniform(0.012, 0.017)
    tall = rng.uniform(0.012, 0.016)
    lumps = _harmonics(rng, range(2, 6), 0.10)
    skin = _waves(rng, 6, (0.004, 0.012), 0.0012)

    def height(u, v):
        q2_round = (u / a) ** 2 + (v / b) ** 2
        near = q2_round < 1.1**2  # the lumps never stretch the outline more than 10 %

        def surface(i):
            scale = 1.0 + lumps(np.arctan2(v[i] / b, u[i] / a))
            q2 = q2_round[i] / scale**2
            body = tall * (0.3 + 0.7 * np.sqrt(np.maximum(1.0 - q2, 0.0)))
            return np.where(q2 < 1.0, np.maximum(body + skin(u[i], v[i]), 0.0), 0.0)

        return _where(near, surface)

    return Part(height, max(a, b) * 1.11, tall + 0.0012)


def make_bracket(rng: np.random.Generator) -> Part:
    """A U-channel bracket: a thick base with two sharp upright walls and two round bolt holes.

    The vertical walls leave missing-data gaps and occlusion shadows beside them, and the bolt
    holes show the table through sharp-edged bores: the part family where kNN neighbourhoods
    are most often cut by holes.
    """
    a = rng.uniform(0.018, 0.022)  # half length along u
    b = rng.uniform(0.012, 0.015)  # half width along v
    base = rng.uniform(0.007, 0.009)
    wall = rng.uniform(0.011, 0.013)
    wall_thick = rng.uniform(0.003, 0.004)
    bolt = rng.uniform(0.0025, 0.003)
    bolt_u = rng.uniform(0.45, 0.6) * a

    def height(u, v):
        inside = (np.abs(u) < a) & (np.abs(v) < b)
        walls = np.abs(v) > b - wall_thick
        bores = np.minimum(np.hypot(u - bolt_u, v), np.hypot(u + bolt_u, v)) < bolt
        h = np.where(walls, wall, base)
        return np.where(inside & ~(bores & ~walls), h, 0.0)

    return Part(height, float(np.hypot(a, b)), wall)


def make_stepblock(rng: np.random.Generator) -> Part:
    """A stepped block: three terraces with sharp step walls and a rectangular pocket in the top one."""
    a = rng.uniform(0.018, 0.022)
    b = rng.uniform(0.011, 0.014)
    tops = np.sort(rng.uniform(0.006, 0.013, 3))[::-1] + np.array([0.002, 0.0, -0.001])
    split = rng.uniform(-0.25, 0.25) * a
    pocket = (rng.uniform(0.003, 0.0045), rng.uniform(0.0025, 0.0035), rng.uniform(0.002, 0.003))

    def height(u, v):
        inside = (np.abs(u) < a) & (np.abs(v) < b)
        first, second = split - a / 3, split + a / 3
        h = np.where(u < first, tops[0], np.where(u < second, tops[1], tops[2]))
        pu = (-a + first) / 2  # the pocket sits in the middle of the top terrace
        in_pocket = (np.abs(u - pu) < pocket[0]) & (np.abs(v) < pocket[1])
        h = np.where(in_pocket, h - pocket[2], h)
        return np.where(inside, h, 0.0)

    return Part(height, float(np.hypot(a, b)), float(tops[0]))


def make_connector(rng: np.random.Generator) -> Part:
    """A connector housing: a box with a row of deep rectangular pin sockets, a latch ridge
    along one long side and a chamfered front edge.

    Many small, steep-walled cavities: the sockets are deeper than wide, so their floors are
    mostly in shadow and the kNN neighbourhoods at their rims are one-sided.
    """
    a = rng.uniform(0.016, 0.021)  # half length along u
    b = rng.uniform(0.007, 0.009)  # half width along v
    tall = rng.uniform(0.007, 0.010)
    sockets = int(rng.integers(4, 7))
    pitch = 1.6 * a / sockets
    socket = (rng.uniform(0.28, 0.36) * pitch, rng.uniform(0.0018, 0.0024), rng.uniform(0.003, 0.005))
    latch = (rng.uniform(0.3, 0.45) * a, rng.uniform(0.0012, 0.0018), rng.uniform(0.0015, 0.0025))
    chamfer = rng.uniform(0.0015, 0.0025)

    def height(u, v):
        inside = (np.abs(u) < a) & (np.abs(v) < b)
        h = tall - np.maximum(0.0, v - (b - chamfer))  # a 45-degree chamfer on the +v edge
        slot = np.round(u / pitch + (sockets - 1) / 2)
        centre = (slot - (sockets - 1) / 2) * pitch
        in_socket = np.abs(slot - (sockets - 1) / 2) <= (sockets - 1) / 2
        in_socket &= (np.abs(u - centre) < socket[0]) & (np.abs(v + 0.15 * b) < socket[1])
        h = np.where(in_socket, h - socket[2], h)
        on_latch = (np.abs(u) < latch[0]) & (v < -b + latch[1] + 0.0005) & (v > -b + 0.0005)
        h = np.where(on_latch, h + latch[2], h)
        return np.where(inside, h, 0.0)

    return Part(height, float(np.hypot(a, b)), tall + latch[2])


def make_flange(rng: np.random.Generator) -> Part:
    """A pipe flange: a round plate with a raised hub, a through bore and a ring of bolt holes.

    Round and sharp at once: a cylindrical hub wall, a bore and bolt holes that show the
    table, on a plate whose outer rim is rounded.
    """
    r_plate = rng.uniform(0.017, 0.021)
    plate = rng.uniform(0.003, 0.005)
    r_hub = rng.uniform(0.42, 0.52) * r_plate
    hub = plate + rng.uniform(0.004, 0.007)
    r_bore = rng.uniform(0.45, 0.6) * r_hub
    bolts = int(rng.integers(4, 7))
    r_bolt = rng.uniform(0.07, 0.09) * r_plate
    ring = 0.5 * (r_hub + r_plate)
    edge = rng.uniform(0.0015, 0.0025)  # radius of the plate's rounded outer edge
    phase = rng.uniform(0, 2 * np.pi)

    def height(u, v):
        r = np.hypot(u, v)
        theta = np.arctan2(v, u) - phase
        # distance to the nearest bolt centre on the ring
        nearest = np.round(theta * bolts / (2 * np.pi)) * 2 * np.pi / bolts
        bolt_d = np.hypot(r * np.cos(theta - nearest) - ring, r * np.sin(theta - nearest))
        round_edge = np.sqrt(np.maximum(edge**2 - np.maximum(r - (r_plate - edge), 0.0) ** 2, 0.0))
        h = np.where(r < r_hub, hub, plate - edge + round_edge)
        solid = (r < r_plate) & (r >= r_bore) & (bolt_d >= r_bolt)
        return np.where(solid, h, 0.0)

    return Part(height, float(r_plate), float(hub))


def make_heatsink(rng: np.random.Generator) -> Part:
    """A finned heat sink: a base plate carrying a row of thin, tall, parallel fins.

    The channels between the fins are deeper than wide, so their floors lie mostly in the
    projector's shadow, and each fin top is a ridge only a few sampled points across: the family
    with the most rims per square centimetre.
    """
    a = rng.uniform(0.016, 0.020)  # half length along u, across the fins
    b = rng.uniform(0.012, 0.016)  # half width along v, along the fins
    base = rng.uniform(0.0025, 0.004)
    fins = int(rng.integers(5, 8))
    pitch = 2 * a / fins
    fin_half = rng.uniform(0.18, 0.25) * pitch
    fin_top = base + rng.uniform(0.006, 0.009)

    def height(u, v):
        inside = (np.abs(u) < a) & (np.abs(v) < b)
        centre = (np.floor((u + a) / pitch) + 0.5) * pitch - a
        on_fin = np.abs(u - centre) < fin_half
        return np.where(inside, np.where(on_fin, fin_top, base), 0.0)

    return Part(height, float(np.hypot(a, b)), float(fin_top))


def make_gear(rng: np.random.Generator) -> Part:
    """A spur gear lying flat: a toothed disc with a raised hub, a through bore and a keyway.

    A periodic outline of short steep flanks all round, inside it a round hub wall and a bore
    with one rectangular notch: repeated sharp detail that a defect has to stand out from.
    """
    r_root = rng.uniform(0.013, 0.016)
    depth = rng.uniform(0.0018, 0.0028)  # tooth height above the root circle
    teeth = int(rng.integers(14, 22))
    thick = rng.uniform(0.004, 0.006)
    r_hub = rng.uniform(0.35, 0.45) * r_root
    hub = thick + rng.uniform(0.002, 0.004)
    r_bore = rng.uniform(0.45, 0.6) * r_hub
    key = rng.uniform(0.25, 0.35) * r_bore  # half width of the keyway
    phase = rng.uniform(0, 2 * np.pi)

    def height(u, v):
        r = np.hypot(u, v)
        theta = np.arctan2(v, u) - phase
        # 0 in the middle of a tooth, 1 in the middle of a gap; trapezoidal teeth
        t = np.abs(np.mod(theta * teeth / (2 * np.pi), 1.0) - 0.5) * 2
        outline = r_root + depth * np.clip((0.75 - t) / 0.3, 0.0, 1.0)
        x, y = r * np.cos(theta), r * np.sin(theta)
        keyway = (x > 0) & (np.abs(y) < key) & (x < r_bore + 1.2 * key)
        solid = (r < outline) & (r >= r_bore) & ~keyway
        return np.where(solid, np.where(r < r_hub, hub, thick), 0.0)

    return Part(height, float(r_root + depth), float(hub))


MAKERS: dict[str, Callable[[np.random.Generator], Part]] = {
    "tire": make_tire,
    "bagel": make_bagel,
    "cookie": make_cookie,
    "dowel": make_dowel,
    "foam": make_foam,
    "potato": make_potato,
    "carrot": make_carrot,
    "bracket": make_bracket,
    "stepblock": make_stepblock,
    "connector": make_connector,
    "flange": make_flange,
    "heatsink": make_heatsink,
    "gear": make_gear,
}
