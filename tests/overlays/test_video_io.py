"""Reading videos: exact frame counts, frame-accurate random access, timestamps that follow
variable frame rates, and a clear named error for every bad input."""

from __future__ import annotations

import os
import random
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image
from video_clips import index_clip, index_frame, read_index

import overlays as ov
from overlays import video_index
from overlays.video_io import VideoInfo, VideoReader, is_video_path, sample_times, write_video


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """90 frames at 30 fps with a keyframe every 7 frames and B-frames (x264 defaults)."""
    return index_clip(tmp_path_factory.mktemp("video") / "count.mp4", 90, gop=7)


def test_info_is_exact(clip: Path) -> None:
    with VideoReader(clip) as reader:
        info = reader.info
    assert (info.width, info.height, info.frame_count) == (64, 48, 90)
    assert info.fps == pytest.approx(30) and info.duration == pytest.approx(3.0)
    assert info.codec == "h264" and not info.variable_frame_rate
    assert len(info.sha256) == 64 and info.path == str(clip)
    assert VideoInfo.from_dict(info.to_dict()) == info


def test_random_access_is_frame_accurate(clip: Path) -> None:
    order = list(range(90)) * 2
    random.Random(0).shuffle(order)
    with VideoReader(clip) as reader:
        seen = {i: read_index(reader.frame_array(i)) for i in order}
        backwards = [read_index(reader.frame_array(i)) for i in reversed(range(90))]
    assert seen == {i: i for i in range(90)}
    assert backwards == list(reversed(range(90)))


def test_frame_is_an_rgb_image(clip: Path) -> None:
    with VideoReader(clip) as reader:
        image = reader.frame(5)
        array = reader.frame_array(5)
    assert isinstance(image, Image.Image) and image.mode == "RGB" and image.size == (64, 48)
    assert array.shape == (48, 64, 3) and array.dtype == np.uint8
    assert not array.flags.writeable  # cached: a caller cannot corrupt the next read


def test_sequential_frames_do_not_seek(clip: Path) -> None:
    with VideoReader(clip) as reader:
        reader.frame(0)
        seeks = reader.seeks
        got = [(i, read_index(np.asarray(im))) for i, im in reader.frames(0, 90)]
        assert reader.seeks == seeks
    assert got == [(i, i) for i in range(90)]


def test_frames_with_a_step(clip: Path) -> None:
    with VideoReader(clip) as reader:
        got = [(i, read_index(np.asarray(im))) for i, im in reader.frames(80, 0, -25)]
    assert got == [(80, 80), (55, 55), (30, 30), (5, 5)]


def test_time_and_index_round_trip(clip: Path) -> None:
    with VideoReader(clip) as reader:
        assert reader.time_of(0) == 0.0
        assert reader.time_of(45) == pytest.approx(1.5)
        assert reader.index_at(1.5) == 45
        assert reader.index_at(1.5 + 0.02) == 45  # still shown until 1.5333
        assert reader.index_at(reader.duration) == 89  # the very end shows the last frame
        assert all(reader.index_at(reader.time_of(i)) == i for i in range(90))


def test_variable_frame_rate_follows_timestamps(tmp_path: Path) -> None:
    # A phone-like clip: 30 fps, then a half-second stall, then 30 fps again.
    times = [i / 30 + (0.5 if i >= 45 else 0) for i in range(90)]
    path = index_clip(tmp_path / "vfr.mkv", 90, times=times)
    with VideoReader(path) as reader:
        info = reader.info
        assert info.variable_frame_rate and info.frame_count == 90
        assert info.duration == pytest.approx(3.5, abs=0.01)
        assert reader.time_of(45) == pytest.approx(2.0, abs=1e-3)
        assert reader.index_at(1.8) == 44  # the stall shows frame 44
        assert reader.index_at(2.01) == 45
        assert read_index(reader.frame_array(reader.index_at(2.5))) == 60


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_hevc_clip(tmp_path: Path, suffix: str) -> None:
    path = index_clip(tmp_path / f"hevc{suffix}", 40, codec="libx265", gop=9)
    with VideoReader(path) as reader:
        assert reader.info.codec == "hevc"
        order = list(range(40))
        random.Random(1).shuffle(order)
        assert all(read_index(reader.frame_array(i)) == i for i in order)


def test_odd_sizes_are_padded_by_one_edge_pixel(tmp_path: Path) -> None:
    frames = [np.full((47, 63, 3), 200, np.uint8)] * 3
    write_video(tmp_path / "odd.mp4", frames, 10)
    with VideoReader(tmp_path / "odd.mp4") as reader:
        assert (reader.width, reader.height, reader.frame_count) == (64, 48, 3)


def test_write_video_takes_images_and_replaces_atomically(tmp_path: Path) -> None:
    target = tmp_path / "pil.mp4"
    target.write_bytes(b"old")
    write_video(target, [Image.fromarray(index_frame(i)) for i in range(4)], 12.5)
    with VideoReader(target) as reader:
        assert reader.frame_count == 4 and reader.fps == pytest.approx(12.5)
    assert [p.name for p in tmp_path.iterdir()] == ["pil.mp4"]  # no temporary file left
    with pytest.raises(ValueError, match="no frames"):
        write_video(tmp_path / "none.mp4", [], 10)
    with pytest.raises(ValueError, match="frame 1 is 32×48, the first was 64×48"):
        write_video(tmp_path / "sizes.mp4", [index_frame(0), index_frame(0)[:, :32]], 10)
    with pytest.raises(ValueError, match=r"increasing time per frame \(frame 2"):
        write_video(tmp_path / "vfr.mp4", [index_frame(0)] * 3, 10, times=[0, 0.1, 0.1])
    with pytest.raises(ValueError, match="not in this PyAV build"):
        write_video(tmp_path / "x.mp4", [index_frame(0)], 10, codec="libnope")
    with pytest.raises(ValueError, match="positive"):
        write_video(tmp_path / "x.mp4", [index_frame(0)], float("nan"))
    assert [p.name for p in tmp_path.iterdir()] == ["pil.mp4"]  # no partial files left


def test_display_rotation_is_applied(tmp_path: Path) -> None:
    path = tmp_path / "portrait.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.set_display_rotation(90)
        frame = index_frame(1)
        frame[:4, :] = (255, 0, 0)  # a red top row marks where "up" went
        for _ in range(2):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    with VideoReader(path) as reader:
        assert (reader.width, reader.height) == (48, 64)
        array = reader.frame_array(0)
    assert array.shape == (64, 48, 3)
    assert array[:, :3].mean(axis=(0, 1))[0] > 200  # the top row became the left column


@pytest.mark.parametrize(
    ("index", "words"), [(90, "frame 90 is outside"), (-1, "frame -1 is outside")]
)
def test_index_past_the_end(clip: Path, index: int, words: str) -> None:
    with VideoReader(clip) as reader, pytest.raises(ov.FrameOutOfRange, match=words) as info:
        reader.frame(index)
    assert "90 frames, 0–89, 3.000 s" in str(info.value)


@pytest.mark.parametrize("t", [3.2, -0.1, float("nan")])
def test_time_past_the_end(clip: Path, t: float) -> None:
    with VideoReader(clip) as reader, pytest.raises(ov.FrameOutOfRange, match=r"3\.000 s") as info:
        reader.index_at(t)
    assert isinstance(info.value, ValueError)  # also a ValueError for callers that expect one


def _unreadable(path: Path, words: str) -> None:
    with pytest.raises(ov.VideoUnreadable, match=words) as info:
        VideoReader(path)
    assert str(path.name) in str(info.value) and "\n" not in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    _unreadable(tmp_path / "nope.mp4", "no such file")


def test_a_folder(tmp_path: Path) -> None:
    (tmp_path / "dir.mp4").mkdir()
    _unreadable(tmp_path / "dir.mp4", "is a folder")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.mp4")
    _unreadable(tmp_path / "pipe.mp4", "not a regular file")


@pytest.mark.parametrize("content", [b"", os.urandom(4000)], ids=["empty", "noise"])
def test_corrupt_file(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "bad.mp4").write_bytes(content)
    _unreadable(tmp_path / "bad.mp4", "damaged or truncated")


def test_truncated_mp4(clip: Path, tmp_path: Path) -> None:
    data = clip.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])  # its index (moov) is at the end
    _unreadable(tmp_path / "cut.mp4", "damaged or truncated")


def test_truncated_mkv_opens_what_is_there(tmp_path: Path) -> None:
    whole = index_clip(tmp_path / "whole.mkv", 60, gop=10, crf=30)
    data = whole.read_bytes()
    (tmp_path / "cut.mkv").write_bytes(data[: len(data) * 2 // 3])
    with VideoReader(tmp_path / "cut.mkv") as reader:
        assert 0 < reader.frame_count < 60
        for i in range(reader.frame_count):
            reader.frame(i)  # every indexed frame decodes (or says it cannot): no crash


def test_audio_only_file(tmp_path: Path) -> None:
    path = tmp_path / "voice.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        for k in range(10):
            frame = av.AudioFrame.from_ndarray(
                np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
            )
            frame.sample_rate, frame.pts = 16000, k * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    _unreadable(path, "no video stream .it holds audio only")


def test_pixel_limit(clip: Path) -> None:
    with pytest.raises(ov.VideoTooLarge, match="over the limit of 1,000"):
        VideoReader(clip, max_pixels=1000)


def test_is_video_path() -> None:
    assert is_video_path("a/b.MP4") and is_video_path(Path("x.webm"))
    assert not is_video_path("photo.jpg") and not is_video_path("mp4")


def test_sample_times(clip: Path) -> None:
    with VideoReader(clip) as reader:
        info = reader.info
    assert sample_times(info, start=0, every=0.5, until=None) == [0, 15, 30, 45, 60, 75, 89]
    assert sample_times(info, start=1.0, every=0.5, until=2.0) == [30, 45, 60]
    assert sample_times(info, start=0, every=0.01, until=0.1) == [0, 1, 2, 3]  # no repeats
    assert sample_times(info, start=2.9, every=1, until=99) == [87]
    with pytest.raises(ov.FrameOutOfRange, match=r"3\.000 s"):
        sample_times(info, start=4, every=1, until=None)
    with pytest.raises(ValueError, match="positive"):
        sample_times(info, start=0, every=0, until=None)
    with pytest.raises(ValueError, match="ask less often"):
        sample_times(info, start=0, every=1e-6, until=None)


def test_sample_times_follow_timestamps_with_a_reader(tmp_path: Path) -> None:
    times = [i / 30 + (0.5 if i >= 45 else 0) for i in range(90)]  # a half-second stall at 1.5 s
    with VideoReader(index_clip(tmp_path / "vfr.mkv", 90, times=times)) as reader:
        exact = sample_times(reader, start=1.0, every=0.5, until=3.0)
        average = sample_times(reader.info, start=1.0, every=0.5, until=3.0)
        assert exact == [30, 44, 45, 60, 75]  # 1.5 s falls in the stall: frame 44 is shown
        assert exact == [reader.index_at(t) for t in (1.0, 1.5, 2.0, 2.5, 3.0)]
    assert exact != average  # the average rate (25.7 fps) lands on other frames


def test_a_frame_image_is_a_copy(clip: Path) -> None:
    with VideoReader(clip) as reader:
        image = reader.frame(3)
        image.paste((255, 0, 0), (0, 0, 64, 48))  # a caller drawing on it (render inplace=True)
        assert read_index(reader.frame_array(3)) == 3
        assert read_index(np.asarray(reader.frame(3))) == 3


def test_frames_cut_by_an_edit_list_are_not_frames(tmp_path: Path) -> None:
    """An MP4 whose edit list starts 2 frames in (as cutters and phones write): those frames
    are demuxed but never shown, so they are not counted and frame 0 is the first shown."""
    source = index_clip(tmp_path / "source.mp4", 30, gop=10)
    with av.open(str(source)) as src, av.open(str(tmp_path / "cut.mp4"), "w") as dst:
        stream = src.streams.video[0]
        out = dst.add_stream_from_template(stream)
        for packet in src.demux(stream):
            if not packet.size:
                continue
            shift = 2 * (packet.duration or 0)
            copy = av.Packet(bytes(packet))
            copy.pts, copy.dts = packet.pts - shift, packet.dts - shift  # type: ignore[operator]
            copy.duration, copy.is_keyframe = packet.duration, packet.is_keyframe
            copy.time_base, copy.stream = packet.time_base, out
            dst.mux(copy)
    with VideoReader(tmp_path / "cut.mp4") as reader:
        assert reader.frame_count == 28
        assert [read_index(reader.frame_array(i)) for i in (0, 27, 1)] == [2, 29, 3]


def _no_b_frames_vfr(path: Path, times: list[float]) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"x264-params": "bframes=0"}
        stream.time_base = Fraction(1, 90000)
        for i, t in enumerate(times):
            frame = av.VideoFrame.from_ndarray(index_frame(i), format="rgb24")
            frame.pts, frame.time_base = round(t * 90000), Fraction(1, 90000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def test_the_mp4_sample_table_gives_the_same_index_as_the_packets(tmp_path: Path) -> None:
    """MP4/MOV open without reading the file's data: the index comes from the sample table in
    the header, and must equal the one demuxing every packet gives. Where the table cannot give
    presentation times (reordered frames at a varying rate), the packets are read instead."""
    stall = [i / 30 + (0.5 if i >= 20 else 0) for i in range(40)]
    cases = {
        "b-frames": index_clip(tmp_path / "b.mp4", 40, gop=7),
        "hevc": index_clip(tmp_path / "h.mp4", 30, codec="libx265", gop=9),
        "vfr, no b-frames": _no_b_frames_vfr(tmp_path / "v.mp4", stall),
        "vfr with b-frames": index_clip(tmp_path / "vb.mp4", 40, times=stall),
    }
    for name, path in cases.items():
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            fast = video_index._from_sample_table(container, stream)
            slow = video_index._from_packets(container, stream, path)
        if name == "vfr with b-frames":
            assert fast is None, name
            continue
        assert fast is not None, name
        assert (fast.pts, fast.last_duration) == (slow.pts, slow.last_duration), name
        with VideoReader(path) as reader:  # key times may be estimates: access stays exact
            order = list(range(reader.frame_count))
            random.Random(2).shuffle(order)
            assert all(read_index(reader.frame_array(i)) == i for i in order), name


@pytest.mark.parametrize(
    ("suffix", "codec"),
    [
        (".mov", "libx264"),
        (".m4v", "libx264"),
        (".webm", "libvpx-vp9"),
        (".avi", "mpeg4"),
        (".avi", "libx264"),  # AVI stamps B-frames in decode order: frames must be counted
    ],
)
def test_every_container_is_frame_accurate(tmp_path: Path, suffix: str, codec: str) -> None:
    path = index_clip(tmp_path / f"clip{suffix}", 40, codec=codec, gop=8)
    order = list(range(40)) * 2
    random.Random(3).shuffle(order)
    with VideoReader(path) as reader:
        assert reader.frame_count == 40 and is_video_path(path)
        assert [read_index(reader.frame_array(i)) for i in order] == order
        assert [read_index(np.asarray(image)) for _, image in reader.frames(0, 40)] == list(
            range(40)
        )
