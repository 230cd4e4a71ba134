"""VideoSource's pictures: OpenCV's YUV -> BGR against PyAV's, the fallbacks, ``native``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("av")
pytest.importorskip("cv2")

import av
import cv2
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framescope.video import Frame, VideoSource, VideoWriter
from framescope.video.pixels import Pictures, yuv420_array

# How far OpenCV's BGR may be from PyAV's (swscale's) for the same frame: the mean absolute
# difference over the picture, and the 99.9th percentile of the per-value differences. Only
# at sharp colour edges do values differ more (up to about 20), because OpenCV repeats each
# chroma sample over its 2 x 2 pixels where swscale interpolates.
CHROMA_TOLERANCE = {"mean": 1.0, "p99.9": 3}

# The colour tags FFmpeg uses (AVColorSpace, AVColorRange).
BT709, BT601, FULL_RANGE = 1, 6, 2


def make_clip(
    path: Path,
    size: tuple[int, int],
    *,
    codec: str = "ffv1",
    pix_fmt: str = "yuv420p",
    frames: int = 6,
    colorspace: int | None = None,
    color_range: int | None = None,
) -> Path:
    """FFmpeg's moving testsrc2 pattern, encoded in ``pix_fmt`` (tagged when asked)."""
    width, height = size
    options = {
        "libx264": {"preset": "medium", "profile": "high"},
        "libx265": {"preset": "medium", "x265-params": "log-level=error"},
    }.get(codec, {})
    # testsrc2 rounds its sides down to even: made a little larger, scaled to the size
    even = f"{width + 1 & ~1}x{height + 1 & ~1}"
    pattern = f"testsrc2=size={even}:rate=30:duration={frames / 30}"
    with av.open(pattern, format="lavfi") as source, av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=30, options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if colorspace is not None:
            stream.codec_context.colorspace = colorspace
        if color_range is not None:
            stream.codec_context.color_range = color_range
        for made in source.decode(video=0):
            frame = made.reformat(width=width, height=height, format=pix_fmt)
            frame.pict_type = av.video.frame.PictureType.NONE
            if colorspace is not None:
                frame.colorspace = colorspace
            if color_range is not None:
                frame.color_range = color_range
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def pyav_frames(path: Path, **to_ndarray: Any) -> list[tuple[int, Any, Any]]:
    """(pts, array, the decoded frame) of every frame, by bare PyAV."""
    with av.open(str(path)) as container:
        return [
            (frame.pts, frame.to_ndarray(**to_ndarray), frame)
            for frame in container.decode(video=0)
        ]


def assert_close_to_pyav(ours: Any, theirs: Any) -> None:
    """Within CHROMA_TOLERANCE of PyAV's conversion (OpenCV repeats chroma, swscale interpolates)."""
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype == np.uint8
    difference = np.abs(ours.astype(np.int16) - theirs.astype(np.int16))
    assert difference.mean() <= CHROMA_TOLERANCE["mean"], difference.mean()
    assert np.percentile(difference, 99.9) <= CHROMA_TOLERANCE["p99.9"]


CLIPS = {
    # name: (size, codec, pix_fmt); ffv1 keeps odd sizes, and pads its planes' rows
    "h264-640x480": ((640, 480), "libx264", "yuv420p"),
    "h264-1280x720": ((1280, 720), "libx264", "yuv420p"),
    "hevc-640x480": ((640, 480), "libx265", "yuv420p"),
    "padded-650x362": ((650, 362), "ffv1", "yuv420p"),
    "odd-width-641x480": ((641, 480), "ffv1", "yuv420p"),
    "nv12-640x480": ((640, 480), "rawvideo", "nv12"),
    "nv21-640x480": ((640, 480), "rawvideo", "nv21"),
}


@pytest.mark.parametrize("name", CLIPS)
@pytest.mark.parametrize("target", ["bgr24", "rgb24"])
def test_opencv_converts_8_bit_420_as_pyav_does(tmp_path: Path, name: str, target: str) -> None:
    size, codec, pix_fmt = CLIPS[name]
    path = make_clip(tmp_path / f"{name}.mkv", size, codec=codec, pix_fmt=pix_fmt)
    with av.open(str(path)) as container:
        # PyAV's NV12 path places chroma a row off its own yuv420p path (up to 179 apart
        # at colour edges); the samples are the same, so compare with the yuv420p one.
        expected = [
            (frame.pts, frame.reformat(format="yuv420p").to_ndarray(format=target), frame)
            for frame in container.decode(video=0)
        ]
    source = VideoSource(path, pixel_format=target)
    frames = list(source)
    assert source.converter == "opencv"
    assert len(frames) == len(expected) == 6
    if name.startswith("padded"):  # the case this clip is here for: rows longer than the picture
        assert expected[0][2].planes[0].line_size > size[0]
    for frame, (pts, theirs, _) in zip(frames, expected, strict=True):
        assert frame.pts == pts and frame.pixel_format == target
        assert (frame.width, frame.height) == size
        assert frame.image.flags.c_contiguous
        assert_close_to_pyav(frame.image, theirs)


def bt601(frame: Any) -> Any:
    """The BT.601 limited-range formula, each chroma sample over its 2 x 2 pixels (BGR)."""
    width, height = frame.width, frame.height
    columns, lines = (width + 1) // 2, (height + 1) // 2

    def rows(plane: Any, count: int, length: int) -> Any:
        data, step = bytes(plane), plane.line_size
        return np.array([list(data[r * step : r * step + length]) for r in range(count)], float)

    luma = 1.164 * (rows(frame.planes[0], height, width) - 16)
    if frame.format.name == "yuv420p":
        u, v = rows(frame.planes[1], lines, columns), rows(frame.planes[2], lines, columns)
    else:
        pairs = rows(frame.planes[1], lines, 2 * columns)
        u, v = pairs[:, 0::2], pairs[:, 1::2]
        if frame.format.name == "nv21":
            u, v = v, u
    u = np.repeat(np.repeat(u, 2, 0), 2, 1)[:height, :width] - 128
    v = np.repeat(np.repeat(v, 2, 0), 2, 1)[:height, :width] - 128
    bgr = np.stack([luma + 2.018 * u, luma - 0.813 * v - 0.391 * u, luma + 1.596 * v], -1)
    return np.clip(np.rint(bgr), 0, 255)


@pytest.mark.parametrize(
    ("size", "codec", "pix_fmt"),
    [
        ((3, 2), "ffv1", "yuv420p"),  # the smallest 4:2:0 picture with an odd side
        ((33, 18), "rawvideo", "yuv420p"),  # odd width, rows not padded
        ((650, 362), "ffv1", "yuv420p"),  # rows padded
        ((65, 48), "rawvideo", "nv12"),  # odd width, interleaved chroma
        ((64, 48), "rawvideo", "nv21"),
    ],
)
def test_every_plane_layout_gives_the_bt601_formula(
    tmp_path: Path, size: tuple[int, int], codec: str, pix_fmt: str
) -> None:
    path = make_clip(tmp_path / "clip.mkv", size, codec=codec, pix_fmt=pix_fmt)
    with av.open(str(path)) as container:
        expected = [bt601(frame) for frame in container.decode(video=0)]
    source = VideoSource(path)
    frames = list(source)
    assert source.converter == "opencv"
    assert len(frames) == len(expected) == 6
    for frame, theirs in zip(frames, expected, strict=True):
        assert frame.image.shape == (size[1], size[0], 3)
        assert np.abs(frame.image - theirs).max() <= 1  # OpenCV's fixed-point rounding


@pytest.mark.parametrize(
    ("size", "pix_fmt", "colorspace", "color_range"),
    [
        ((98, 64), "yuv420p10le", None, None),  # 10-bit
        ((98, 64), "yuv422p", None, None),  # 4:2:2
        ((97, 63), "yuv444p", None, None),  # 4:4:4
        ((98, 64), "yuvj420p", None, None),  # full range (JPEG)
        ((98, 64), "yuv420p", None, FULL_RANGE),  # full range, tagged
        ((98, 64), "yuv420p", BT709, None),  # the HD matrix
        ((98, 63), "yuv420p", None, None),  # an odd height
        ((641, 479), "yuv420p", None, None),  # odd sides
        ((97, 63), "gray", None, None),
    ],
)
def test_what_opencv_would_convert_otherwise_is_pyavs_exactly(
    tmp_path: Path,
    size: tuple[int, int],
    pix_fmt: str,
    colorspace: int | None,
    color_range: int | None,
) -> None:
    path = make_clip(
        tmp_path / "clip.mkv",
        size,
        codec="mjpeg" if pix_fmt == "yuvj420p" else "ffv1",
        pix_fmt=pix_fmt,
        colorspace=colorspace,
        color_range=color_range,
    )
    expected = pyav_frames(path, format="bgr24")
    assert expected[0][2].format.name == pix_fmt
    if colorspace is not None:  # the tags reach the decoder's frames
        assert expected[0][2].colorspace == colorspace
    if color_range is not None:
        assert expected[0][2].color_range == color_range
    source = VideoSource(path)
    frames = list(source)
    assert source.converter == "pyav"
    assert len(frames) == len(expected)
    for frame, (_, theirs, _) in zip(frames, expected, strict=True):
        assert np.array_equal(frame.image, theirs)


def test_a_bt709_frame_would_be_wrong_through_opencvs_bt601(tmp_path: Path) -> None:
    """Why BT.709 goes to PyAV: cvtColor's BT.601 matrix is far off for it."""
    path = make_clip(tmp_path / "hd.mkv", (64, 48), colorspace=BT709)
    (_, theirs, decoded), *_ = pyav_frames(path, format="bgr24")
    wrong = cv2.cvtColor(yuv420_array(decoded, None), cv2.COLOR_YUV2BGR_I420)
    assert np.abs(wrong.astype(int) - theirs).mean() > 3 * CHROMA_TOLERANCE["mean"]


def test_without_opencv_pyav_converts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = make_clip(tmp_path / "clip.mkv", (650, 362))
    with VideoSource(path) as with_opencv:
        next(iter(with_opencv))
        assert with_opencv.converter == "opencv"  # the clip OpenCV would convert
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 raises ImportError
    source = VideoSource(path)
    frames = list(source)
    assert source.converter == "pyav"
    expected = pyav_frames(path, format="bgr24")
    assert len(frames) == len(expected) == 6
    for frame, (_, theirs, _) in zip(frames, expected, strict=True):
        assert np.array_equal(frame.image, theirs)


@pytest.mark.parametrize(
    ("size", "pix_fmt", "codec"),
    [
        ((640, 480), "yuv420p", "libx264"),
        ((650, 362), "yuv420p", "ffv1"),
        ((64, 48), "nv12", "rawvideo"),
        ((64, 48), "yuv420p10le", "ffv1"),
        ((64, 48), "yuvj420p", "mjpeg"),
        ((63, 47), "yuv444p", "ffv1"),
    ],
)
def test_native_is_the_decoders_planes_unconverted(
    tmp_path: Path, size: tuple[int, int], pix_fmt: str, codec: str
) -> None:
    path = make_clip(tmp_path / "clip.mkv", size, pix_fmt=pix_fmt, codec=codec)
    expected = pyav_frames(path)  # PyAV's own array of the frame's format, no reformat
    source = VideoSource(path, pixel_format="native")
    frames = list(source)
    assert source.converter == "none"
    assert len(frames) == len(expected) == 6
    for frame, (pts, theirs, _) in zip(frames, expected, strict=True):
        assert frame.pts == pts and frame.pixel_format == pix_fmt
        assert (frame.width, frame.height) == size
        assert frame.image.dtype == theirs.dtype and np.array_equal(frame.image, theirs)


def test_native_odd_420_is_padded_to_even(tmp_path: Path) -> None:
    path = make_clip(tmp_path / "odd.mkv", (641, 479))
    ((_, _, decoded), *_) = pyav_frames(path, format="gray")
    frame = next(iter(VideoSource(path, pixel_format="native")))
    assert frame.image.shape == (480 * 3 // 2, 642)
    assert (frame.width, frame.height, frame.pixel_format) == (641, 479, "yuv420p")
    y_plane = np.frombuffer(decoded.planes[0], np.uint8).reshape(479, -1)[:, :641]
    assert np.array_equal(frame.image[:479, :641], y_plane)
    assert np.array_equal(frame.image[:479, 641], y_plane[:, 640])  # the last column repeated
    assert np.array_equal(frame.image[479, :641], y_plane[478])  # the last row repeated
    chroma = np.frombuffer(decoded.planes[2], np.uint8).reshape(240, -1)[:, :321]
    assert np.array_equal(frame.image[-120:].reshape(240, 321), chroma)  # V, the last plane


def test_bgr_is_cvtcolor_of_native(tmp_path: Path) -> None:
    path = make_clip(tmp_path / "odd.mkv", (641, 480))
    native = list(VideoSource(path, pixel_format="native"))
    bgr = list(VideoSource(path))
    assert len(native) == len(bgr) == 6
    for a, b in zip(native, bgr, strict=True):
        converted = cv2.cvtColor(a.image, cv2.COLOR_YUV2BGR_I420)[:, :641]
        assert np.array_equal(converted, b.image)


def test_native_frames_own_their_memory(tmp_path: Path) -> None:
    """A kept frame is not overwritten by the next one (nothing is reused across frames)."""
    path = make_clip(tmp_path / "clip.mkv", (64, 48))
    for pixel_format in ("native", "bgr24"):
        frames = list(VideoSource(path, pixel_format=pixel_format))
        copies = [frame.image.copy() for frame in frames]
        list(VideoSource(path, pixel_format=pixel_format))  # decode again meanwhile
        assert all(np.array_equal(f.image, c) for f, c in zip(frames, copies, strict=True))
        assert not np.array_equal(frames[0].image, frames[-1].image)


@pytest.mark.parametrize(
    ("value", "error"),
    [("bgr", ValueError), ("", ValueError), ("NATIVE", ValueError), (3, TypeError)],
)
def test_a_bad_pixel_format_is_refused_with_what_is_allowed(value: object, error: type) -> None:
    with pytest.raises(error, match=r"pixel_format must be 'native' or an FFmpeg pixel format"):
        VideoSource("clip.mp4", pixel_format=value)  # type: ignore[arg-type]


def test_a_hand_made_frame_takes_its_size_from_the_image() -> None:
    image = np.zeros((48, 64, 3), np.uint8)
    assert (Frame(image, 0).width, Frame(image, 0).height) == (64, 48)
    assert Frame(image, 0).pixel_format == "bgr24"
    planes = np.zeros((72, 64), np.uint8)
    frame = Frame(planes, 0, pixel_format="yuv420p", size=(63, 47))
    assert (frame.width, frame.height) == (63, 47)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    width=st.integers(2, 40),
    height=st.integers(2, 40),
    count=st.integers(1, 9),
    pix_fmt=st.sampled_from(["yuv420p", "nv12", "yuv444p"]),
    pixel_format=st.sampled_from(["bgr24", "native"]),
)
def test_every_frame_comes_once_in_order(
    tmp_path_factory: pytest.TempPathFactory,
    *,
    width: int,
    height: int,
    count: int,
    pix_fmt: str,
    pixel_format: str,
) -> None:
    path = make_clip(
        tmp_path_factory.mktemp("clip") / "clip.nut",
        (width, height),
        codec="rawvideo",
        pix_fmt=pix_fmt,
        frames=count,
    )
    with av.open(str(path)) as container:
        decoded = list(container.decode(video=0))
    frames = list(VideoSource(path, pixel_format=pixel_format))
    assert [f.pts for f in frames] == [d.pts for d in decoded] and len(decoded) == count
    assert [f.index for f in frames] == list(range(count))
    assert len({f.image.ctypes.data for f in frames}) == count  # no array handed out twice
    for frame, theirs in zip(frames, decoded, strict=True):
        assert (frame.width, frame.height) == (width, height)
        luma = np.frombuffer(theirs.planes[0], np.uint8).reshape(height, -1)[:, :width]
        if pixel_format == "native" and pix_fmt != "yuv444p":
            assert frame.pixel_format == pix_fmt
            assert frame.image.shape == (((height + 1) // 2) * 3, width + (width & 1))
            assert np.array_equal(frame.image[:height, :width], luma)
        elif pixel_format == "native":
            assert np.array_equal(frame.image, theirs.to_ndarray())
        elif pix_fmt == "yuv444p" or height & 1:  # PyAV's conversion
            assert np.array_equal(frame.image, theirs.to_ndarray(format="bgr24"))
        else:
            assert np.abs(frame.image - bt601(theirs)).max() <= 1


@pytest.mark.parametrize("pixel_format", ["bgr24", "native"])
def test_a_clip_with_b_frames_comes_whole_and_in_order(tmp_path: Path, pixel_format: str) -> None:
    """Frame-threaded decoding of reordered (B) frames: each frame once, in display order."""
    path = make_clip(tmp_path / "clip.mp4", (320, 240), codec="libx264", frames=90)
    expected = pyav_frames(path, format="yuv420p")
    frames = list(VideoSource(path, pixel_format=pixel_format))
    assert len(frames) == len(expected) == 90
    assert [f.pts for f in frames] == sorted(pts for pts, _, _ in expected)
    assert len({f.pts for f in frames}) == 90
    for frame, (_, planes, _) in zip(frames, expected, strict=True):
        native = frame.image if pixel_format == "native" else None
        if native is not None:
            assert np.array_equal(native, planes)
        else:
            reference = cv2.cvtColor(planes, cv2.COLOR_YUV2BGR_I420)
            assert np.array_equal(frame.image, reference)


def test_a_writer_refuses_a_frame_that_is_not_bgr(tmp_path: Path) -> None:
    path = make_clip(tmp_path / "clip.mkv", (64, 48))
    frame = next(iter(VideoSource(path, pixel_format="native")))
    rgb = next(iter(VideoSource(path, pixel_format="rgb24")))  # the right shape, not BGR
    with VideoWriter(str(tmp_path / "out.mkv"), fps=30) as writer:
        for wrong in (frame, rgb):
            with pytest.raises(ValueError, match=r"pixel_format='bgr24'"):
                writer.write(wrong)
        writer.write(next(iter(VideoSource(path))))
    assert writer.frames_written == 1


def test_one_source_converts_frames_whose_size_and_format_change(tmp_path: Path) -> None:
    """The source's one swscale context follows a stream that changes (e.g. after a reconnect)."""
    clips = [
        make_clip(tmp_path / "a.mkv", (98, 64), colorspace=BT709),
        make_clip(tmp_path / "b.mkv", (64, 48), pix_fmt="yuv444p"),
        make_clip(tmp_path / "c.mkv", (98, 64), pix_fmt="yuv420p10le"),
    ]
    pictures = Pictures("bgr24")
    for path in [*clips, clips[0]]:
        for _, theirs, decoded in pyav_frames(path, format="bgr24"):
            image, pixel_format, size = pictures.convert(decoded)
            assert pictures.converter == "pyav" and pixel_format == "bgr24"
            assert size == (decoded.width, decoded.height)
            assert np.array_equal(image, theirs)
