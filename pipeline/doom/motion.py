"""The Doom player's movement in fixed point, tic by tic, and a driver that stops him on a mark.

A demo is open loop: the engine replays the recorded commands and nothing corrects a drift. So
the commands are chosen against a model of what the engine does with them (P_MovePlayer,
P_Thrust and P_XYMovement in chocolate-doom), down to the 1/65536 unit. Each tic the engine
turns the player, adds the command's thrust to his momentum, moves him by it (in two halves
when it is large) and multiplies it by the friction, or zeroes it once it is tiny and no key
is held. The model leaves out collisions: the route keeps the player on cell centres, 16 units
clear of every wall.

Angles here are the demo's turn unit, 1/256 of a circle; 0 is east and 64 north.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

FRACUNIT = 1 << 16
MAXMOVE = 30 * FRACUNIT
STOPSPEED = 0x1000
FRICTION = 0xE800
RUN = 50  # the forward move of a running player, the most a keyboard gives
# finecosine and finesine of the four headings, as the engine's table has them: its entries are
# sampled half a step off the angle, so "east" also pushes north by 25/65536 of the thrust.
HEADINGS = {0: (65535, 25), 64: (-25, 65535), 128: (-65535, -25), 192: (25, -65535)}
_MAX_TICS_PER_UNIT = 4  # a bound on a drive, well above the ~0.1 tic a unit it takes


@dataclass(frozen=True)
class Tic:
    """One demo tic: forward move (-128..127), turn (0..255, 1/256 of a circle), use pressed."""

    forward: int = 0
    turn: int = 0
    use: bool = False


@dataclass
class Player:
    """Position and momentum in 16.16 fixed point, and the heading, as the engine keeps them."""

    x: int
    y: int
    angle: int
    momx: int = 0
    momy: int = 0

    def copy(self) -> Player:
        """An independent copy, to try commands on."""
        return Player(self.x, self.y, self.angle, self.momx, self.momy)

    @property
    def at_rest(self) -> bool:
        """Whether the player has no momentum left."""
        return self.momx == 0 and self.momy == 0

    def run(self, tic: Tic) -> None:
        """Advance one tic under a command."""
        self.angle = (self.angle + tic.turn) & 255
        if tic.forward:
            cosine, sine = HEADINGS[self.angle]
            move = tic.forward * 2048
            self.momx += _fixed_mul(move, cosine)
            self.momy += _fixed_mul(move, sine)
        if self.momx or self.momy:
            self._move(tic.forward)

    def _move(self, forward: int) -> None:
        self.momx = max(-MAXMOVE, min(MAXMOVE, self.momx))
        self.momy = max(-MAXMOVE, min(MAXMOVE, self.momy))
        xmove, ymove = self.momx, self.momy
        # The engine splits only a large positive move, and its two halves are a C division
        # (towards zero) and a shift (towards minus infinity); both quirks are kept.
        while True:
            if xmove > MAXMOVE // 2 or ymove > MAXMOVE // 2:
                self.x += _c_half(xmove)
                self.y += _c_half(ymove)
                xmove >>= 1
                ymove >>= 1
            else:
                self.x += xmove
                self.y += ymove
                xmove = ymove = 0
            if not (xmove or ymove):
                break
        if forward == 0 and all(-STOPSPEED < m < STOPSPEED for m in (self.momx, self.momy)):
            self.momx = self.momy = 0
        else:
            self.momx = _fixed_mul(self.momx, FRICTION)
            self.momy = _fixed_mul(self.momy, FRICTION)


def drive(player: Player, heading: int, target: int) -> list[Tic]:
    """Turn the player to heading and bring him to rest at coordinate target along it (he starts at rest).

    Each tic takes the strongest forward move after which full braking still stops him short of
    the target, so he runs flat out, brakes late, and creeps the last fraction of a unit.
    """
    axis = _AXES[heading]
    goal = axis.sign * target
    turn = (heading - player.angle) & 255
    tics: list[Tic] = []
    limit = _MAX_TICS_PER_UNIT * (abs(goal - axis.position(player)) // FRACUNIT) + 64
    while len(tics) < limit:
        if player.at_rest and goal - axis.position(player) < FRACUNIT // 4:
            return tics
        forward = _strongest(player, turn, goal, axis)
        if forward == 0 and player.at_rest:
            return tics
        tic = Tic(forward, turn)
        player.run(tic)
        tics.append(tic)
        turn = 0
    raise AssertionError(f"drive did not settle within {limit} tics")


@dataclass(frozen=True)
class _Axis:
    """The coordinate a heading moves along, signed so that forward is positive."""

    sign: int
    name: str

    def position(self, player: Player) -> int:
        value: int = getattr(player, self.name)
        return self.sign * value

    def speed(self, player: Player) -> int:
        value: int = getattr(player, "mom" + self.name)
        return self.sign * value


_AXES = {0: _Axis(1, "x"), 64: _Axis(1, "y"), 128: _Axis(-1, "x"), 192: _Axis(-1, "y")}


def _strongest(player: Player, turn: int, goal: int, axis: _Axis) -> int:
    """The largest forward move this tic that still lets braking stop at or before goal."""
    position, state = axis.position(player), (player.angle, player.momx, player.momy, turn, axis)

    def stops_short(forward: int) -> bool:
        return position + _reach(*state, forward) <= goal

    if goal - position > _FAR or stops_short(RUN):
        return RUN
    low, high = -RUN, RUN  # stops_short(high) is false; find the largest forward that stops short
    if not stops_short(low):
        return low
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if stops_short(middle) else (low, middle)
    return low


@functools.lru_cache(maxsize=1 << 16)
def _reach(angle: int, momx: int, momy: int, turn: int, axis: _Axis, forward: int) -> int:
    """How far along the axis one tic of this command and then full braking carry the player.

    Where he starts plays no part, so the answer depends on his heading and momentum alone, and
    the same states come back again and again: every run along a heading speeds up through the
    same momenta, and each tic's search tries the same commands (a few thousand trials a demo).
    So it is cached, per process: a demo's trials are most of its cost, and the demo is on the
    last step's critical path (docs/performance.md).
    """
    trial = Player(0, 0, angle, momx, momy)
    trial.run(Tic(forward, turn))
    return axis.position(trial) + _braking_distance(trial.angle, trial.momx, trial.momy, axis)


def _brake(player: Player, axis: _Axis) -> int:
    """Where the player comes to rest along the axis if he brakes as hard as he can (without reversing)."""
    for _ in range(256):
        if player.at_rest:
            break
        player.run(Tic(-min(RUN, max(0, axis.speed(player) // 2048))))
    return axis.position(player)


def _braking_distance(angle: int, momx: int, momy: int, axis: _Axis) -> int:
    """How far along the axis full braking carries a player with this heading and momentum.

    _brake on plain integers, the same arithmetic as Player.run, with no objects made a tic: the
    trials of _strongest are most of a demo's cost, and the demo is on the last step's critical
    path (docs/performance.md). Where he starts plays no part (the engine only adds his momentum
    to his position). tests/unit/test_doom_demo.py holds it to _brake.
    """
    along_x, sign = axis.name == "x", axis.sign
    half = MAXMOVE // 2
    x = y = 0
    for _ in range(256):
        if momx == 0 and momy == 0:
            break
        speed = sign * (momx if along_x else momy) // 2048
        forward = -RUN if speed > RUN else -speed if speed > 0 else 0
        if forward:
            cosine, sine = HEADINGS[angle]
            move = forward * 2048
            momx += (move * cosine) >> 16
            momy += (move * sine) >> 16
        if not (momx or momy):
            continue
        momx = MAXMOVE if momx > MAXMOVE else -MAXMOVE if momx < -MAXMOVE else momx
        momy = MAXMOVE if momy > MAXMOVE else -MAXMOVE if momy < -MAXMOVE else momy
        xmove, ymove = momx, momy
        while True:
            if xmove > half or ymove > half:
                x += -(-xmove // 2) if xmove < 0 else xmove // 2
                y += -(-ymove // 2) if ymove < 0 else ymove // 2
                xmove >>= 1
                ymove >>= 1
            else:
                x += xmove
                y += ymove
                xmove = ymove = 0
            if not (xmove or ymove):
                break
        if forward == 0 and -STOPSPEED < momx < STOPSPEED and -STOPSPEED < momy < STOPSPEED:
            momx = momy = 0
        else:
            momx = (momx * FRICTION) >> 16
            momy = (momy * FRICTION) >> 16
    return sign * (x if along_x else y)


def _run_and_brake_distance() -> int:
    """The farthest one tic flat out and then full braking can carry the player, from his top speed.

    Farther from the target than this, _strongest needs no trial: running is always short.
    """
    farthest = 0
    for heading, axis in _AXES.items():
        player = Player(0, 0, heading)
        for _ in range(256):  # from rest to top speed, which the friction caps
            player.run(Tic(RUN))
        start = axis.position(player)
        player.run(Tic(RUN))
        farthest = max(farthest, _brake(player, axis) - start)
    return farthest


def _fixed_mul(a: int, b: int) -> int:
    return (a * b) >> 16


def _c_half(value: int) -> int:
    return -(-value // 2) if value < 0 else value // 2


_FAR = _run_and_brake_distance() + FRACUNIT
