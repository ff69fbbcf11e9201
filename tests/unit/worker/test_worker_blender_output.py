"""The Blender output parser, on output captured from a real Blender 3.4.1 render.

data/blender-3.4.1-cycles-2frames.txt: `blender --background test.blend --render-output
.../frame_##### --render-format PNG --render-frame 1..2` of a 160x120 Cycles scene with 4
samples; data/blender-3.4.1-no-oidn.txt: the same scene with denoising on (this build lacks
OpenImageDenoiser and exits with code 1).
"""

from pathlib import Path

from worker.blender_output import BlenderOutputParser

DATA = Path(__file__).parent / "data"


def lines(name):
    return (DATA / name).read_text().splitlines()


def test_two_frame_render():
    parser = BlenderOutputParser([1, 2])
    fractions, saved, checkpoints, activities = [], [], [], []
    for line in lines("blender-3.4.1-cycles-2frames.txt"):
        for ev in parser.feed(line):
            if ev.kind == "saved":
                saved.append(ev.value)
            elif ev.kind == "checkpoint":
                checkpoints.append(ev.value)
            elif ev.kind == "activity":
                activities.append(ev.value)
        fractions.append(parser.fraction())
    assert saved == ["/tmp/wk/out/frame_00001.png", "/tmp/wk/out/frame_00002.png"]
    assert checkpoints == ["loading", "rendering"]
    assert fractions == sorted(fractions), "progress never goes back"
    assert fractions[-1] == 1.0
    # Samples refine the progress within a frame: 1/4 of frame 1 is 12.5% of the task.
    assert 0.125 in fractions and 0.5 in fractions and 0.625 in fractions
    assert any("Remaining:00:00.01" in a for a in activities)
    assert activities[-1].startswith("Fra:2 (2/2) | Mem:10.86M (Peak 11.45M) | Time:00:00.02")
    assert activities[-1].endswith("| Finished")
    assert parser.state.frames_done == {1, 2}


def test_render_without_known_frames_uses_samples():
    parser = BlenderOutputParser()
    all_lines = lines("blender-3.4.1-cycles-2frames.txt")
    first_sample = next(i for i, l in enumerate(all_lines) if "Sample 1/4" in l)
    for line in all_lines[:first_sample + 1]:
        parser.feed(line)
    assert parser.state.frame == 1
    assert parser.state.sample == 1 and parser.state.samples == 4
    assert parser.fraction() == 0.25


def test_denoiser_error_is_kept_for_the_failure_message():
    parser = BlenderOutputParser([1])
    errors = [ev.value for line in lines("blender-3.4.1-no-oidn.txt") for ev in parser.feed(line)
              if ev.kind == "error"]
    assert errors == ["Build without OpenImageDenoiser"]
    assert parser.state.last_error == "Build without OpenImageDenoiser"
    assert parser.fraction() < 1.0


def test_other_render_engines_and_warnings():
    parser = BlenderOutputParser([10, 11])
    parser.feed("Fra:10 Mem:20.1M (Peak 25.0M) | Time:00:01.00 | Rendering 32 / 64 samples")
    assert parser.fraction() == 0.25
    parser.feed("Fra:10 Mem:20.1M (Peak 25.0M) | Time:00:02.00 | Remaining:00:10.00 | Scene | Rendered 3/4 Tiles, Sample 64/64")
    assert parser.state.tiles == 4 and parser.state.tile == 3
    assert parser.fraction() == (2 + 1.0) / 4 / 2
    (ev,) = parser.feed("Warning: Path '/textures/wood.png' not found")
    assert ev.kind == "warning"
    parser.feed("Fra:11 Mem:20.1M (Peak 25.0M) | Time:00:00.10 | Sample 0/64")
    assert parser.state.frames_done == {10}
    assert parser.fraction() == 0.5
