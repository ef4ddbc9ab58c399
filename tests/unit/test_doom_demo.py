"""pipeline/doom: the route along the critical path, the fixed-point player model and the demo lump."""

from __future__ import annotations

import copy
import random
from itertools import pairwise

import pytest

from pipeline import PipelineError
from pipeline.doom import read_scene, write_demo
from pipeline.doom.demo import BT_USE, play_route
from pipeline.doom.motion import (
    _AXES,
    FRACUNIT,
    MAXMOVE,
    RUN,
    STOPSPEED,
    Player,
    Tic,
    _brake,
    _braking_distance,
    _reach,
    drive,
)
from pipeline.doom.route import plan_route
from tests.doom_scenes import GENERATED_LAIRS, KEYED, SCENES, scene_from_art, scene_named

PLAYER_RADIUS = 16
LEVELS = [*SCENES, *GENERATED_LAIRS]  # hand-made and generated


def test_the_route_fetches_the_key_before_the_locked_door():
    scene = read_scene(SCENES["keyed"])
    route = plan_route(scene)
    key = next(e.cell for e in scene.entities if e.kind == "key")
    red_door = next(d.cell for d in scene.doors if d.lock == "red")
    assert route.cells.index(key) < route.cells.index(red_door)
    assert route.cells[0] == scene.start.cell and route.cells[-1] == scene.exit.cell
    # The side room's door is crossed twice but opened once; doors open from the cell before them.
    assert [route.cells[i + 1] for i in sorted(route.opens)] == [(4, 1), (6, 2), red_door]


@pytest.mark.parametrize("name", LEVELS)
def test_the_route_steps_cell_by_cell_on_walkable_ground(name):
    scene = read_scene(scene_named(name))
    route = plan_route(scene)
    walkable = scene.walkable()
    assert set(route.cells) <= walkable
    assert all(abs(a[0] - b[0]) + abs(a[1] - b[1]) == 1 for a, b in pairwise(route.cells))


def test_a_critical_path_through_a_lock_before_its_key_is_refused():
    scene = scene_from_art(KEYED, "123")  # skips the side room with the red key
    with pytest.raises(PipelineError, match="no door it can open"):
        write_demo(scene)


def test_the_route_prefers_fewer_turns_at_equal_length():
    # Across an open 5x5 room: two legs, one turn, not a staircase.
    scene = scene_from_art("#######\n#@1111#\n#11111#\n#11111#\n#11111#\n#1111>#\n#######", "1")
    cells = plan_route(read_scene(scene)).cells
    turns = sum(
        (b[0] - a[0], b[1] - a[1]) != (c[0] - b[0], c[1] - b[1])
        for a, b, c in zip(cells, cells[1:], cells[2:], strict=False)
    )
    assert turns == 1


@pytest.mark.parametrize("heading", [0, 64, 128, 192])
@pytest.mark.parametrize("distance", [1, 37, 64, 640, 64 * 40])
def test_drive_comes_to_rest_on_the_mark(heading, distance):
    player = Player(0, 0, angle=64)
    sign, axis = {0: (1, "x"), 64: (1, "y"), 128: (-1, "x"), 192: (-1, "y")}[heading]
    target = sign * distance * FRACUNIT
    tics = drive(player, heading, target)
    assert player.at_rest and player.angle == heading
    assert 0 <= sign * (target - getattr(player, axis)) < FRACUNIT // 4
    # Flat out is about 16.7 units a tic; speeding up and braking add a few tics.
    assert len(tics) <= distance / 16 + 30
    assert all(-RUN <= tic.forward <= RUN for tic in tics)


def test_drive_never_overshoots_on_the_way():
    player = Player(0, 0, angle=0)
    positions = []
    for tic in drive(Player(0, 0, angle=0), 0, 300 * FRACUNIT):
        player.run(tic)
        positions.append(player.x)
    assert positions == sorted(positions) and positions[-1] <= 300 * FRACUNIT


def test_a_large_move_is_split_as_the_engine_splits_it():
    """Only a large positive move is halved, losing the odd 1/65536 unit; a negative one is not."""
    east, west = Player(0, 0, 0, momx=MAXMOVE - 1), Player(0, 0, 128, momx=-(MAXMOVE - 1))
    east.run(Tic())
    west.run(Tic())
    assert east.x == MAXMOVE - 2 and west.x == -(MAXMOVE - 1)


def test_a_running_player_is_pushed_sideways_by_the_engine_sine_table():
    player = Player(0, 0, angle=0)
    for _ in range(35):
        player.run(Tic(RUN))
    assert player.y > 0  # finesine[0] is 25, not 0


@pytest.mark.parametrize("heading", [0, 64, 128, 192])
def test_the_braking_distance_is_the_players_own_brake_from_anywhere(heading):
    """The integer shortcut the driver's trials use stops where Player.run, tic by tic, stops."""
    rng = random.Random(heading)
    axis = _AXES[heading]
    speeds = [0, 1, 2047, 2048, STOPSPEED - 1, STOPSPEED, MAXMOVE // 2, MAXMOVE // 2 + 1, MAXMOVE, MAXMOVE + 5]
    states = [(a, b) for a in speeds for b in (0, 25, -25)] + [
        (rng.randint(-MAXMOVE - 9, MAXMOVE + 9), rng.randint(-MAXMOVE, MAXMOVE)) for _ in range(300)
    ]
    for along, across in states:
        momx, momy = (along, across) if axis.name == "x" else (across, along)
        momx, momy = axis.sign * momx, axis.sign * momy
        start = (rng.randint(-(1 << 24), 1 << 24), rng.randint(-(1 << 24), 1 << 24))
        stopped = _brake(Player(*start, heading, momx, momy), axis)
        assert axis.position(Player(*start, heading)) + _braking_distance(heading, momx, momy, axis) == stopped


@pytest.mark.parametrize("heading", [0, 64, 128, 192])
def test_a_trials_reach_is_one_tic_and_the_brake_from_wherever_the_player_stands(heading):
    """The driver's cached trial (no position in its key) ends where trying the command on a copy of
    the player, tic by tic, ends, wherever he stands."""
    rng = random.Random(heading + 1)
    axis = _AXES[heading]
    for _ in range(300):
        momx, momy = rng.randint(-MAXMOVE, MAXMOVE), rng.randint(-MAXMOVE, MAXMOVE)
        turn, forward = rng.choice([0, 64, 128, 192]), rng.randint(-RUN, RUN)
        player = Player(rng.randint(-(1 << 24), 1 << 24), rng.randint(-(1 << 24), 1 << 24), heading, momx, momy)
        trial = player.copy()
        trial.run(Tic(forward, turn))
        expected = _brake(trial, axis)
        assert axis.position(player) + _reach(heading, momx, momy, turn, axis, forward) == expected


@pytest.mark.parametrize("name", LEVELS)
def test_the_player_never_brushes_a_wall_or_a_closed_door(name):
    """Replaying the demo's tics in the model, the player's box stays on walkable cells, doors open first."""
    scene = read_scene(scene_named(name))
    route = plan_route(scene)
    walkable, doors = scene.walkable(), set(scene.door_at)
    x, y = route.cells[0]
    player = Player((x * 64 + 32) * FRACUNIT, -(y * 64 + 32) * FRACUNIT, angle=64)
    opened_at = {}
    for time, tic in enumerate(play_route(route)):
        player.run(tic)
        if tic.use:
            dx, dy = {0: (1, 0), 64: (0, -1), 128: (-1, 0), 192: (0, 1)}[player.angle]
            opened_at[(player.x // FRACUNIT // 64 + dx, -player.y // FRACUNIT // 64 + dy)] = time
        for cell in _cells_under(player):
            assert cell in walkable, f"the player touches {cell}"
            # A door rises 2 units a tic; the player is 56 tall.
            if cell in doors:
                assert time - opened_at.get(cell, time) >= 28, f"the player walks into closed door {cell}"


def _cells_under(player: Player) -> set:
    left, right = player.x / FRACUNIT - PLAYER_RADIUS, player.x / FRACUNIT + PLAYER_RADIUS
    top, bottom = -player.y / FRACUNIT - PLAYER_RADIUS, -player.y / FRACUNIT + PLAYER_RADIUS
    return {(int(x // 64), int(y // 64)) for x in (left, right - 1e-9) for y in (top, bottom - 1e-9)}


def test_the_demo_lump_is_v19_monsters_off_four_bytes_a_tic():
    scene = SCENES["keyed"]
    demo = write_demo(scene)
    assert demo == write_demo(copy.deepcopy(scene))
    assert demo[:13] == bytes([109, 2, 1, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0])
    assert demo[-1] == 0x80 and (len(demo) - 14) % 4 == 0
    tics = [demo[i : i + 4] for i in range(13, len(demo) - 1, 4)]
    assert all(tic[1] == 0 for tic in tics)  # no strafing
    # Three doors opened once each, then the exit switch.
    assert sum(tic[3] == BT_USE for tic in tics) == 4


def test_the_tour_demo_opens_every_lock_in_order():
    scene = read_scene(SCENES["tour"])
    route = plan_route(scene)
    locked = {d.cell: d.lock for d in scene.doors if d.lock}
    order = [locked[route.cells[i + 1]] for i in sorted(route.opens) if route.cells[i + 1] in locked]
    assert order == ["blue", "yellow", "red"]
