"""A minimal H.264 (Constrained Baseline) bitstream writer for a still title card.

* frame 0 is an IDR picture whose macroblocks are all ``I_PCM`` (raw 4:2:0 samples, no transform or
  prediction), so the encoder is a bit writer plus a sample copy;
* every later frame is a P picture made of one ``mb_skip_run`` covering every macroblock, which a
  decoder turns into an exact copy of the previous picture: the card stays still for the whole clip.

Any even width and height are supported: the coded picture is rounded up to whole 16x16 macroblocks and
the SPS frame-cropping window trims it back to the requested size. The level_idc written is the smallest
whose frame-size, macroblock-rate and CPB-size limits the stream meets, up to level 6.2 (139,264
macroblocks, e.g. 8192x4320). (An all-I_PCM picture is necessarily larger than the "MinCR" compression
ratio that the levels ask for; decoders do not enforce that, and ffmpeg/PyAV decode these files without a
warning.)

>>> _choose_level(80, 45, 30)  # 1280x720 at 30 fps: level 3.1
31
"""

from __future__ import annotations

import functools
import math
import struct
from typing import NamedTuple

from .card import _BG, _lookup_table

_LOG2_MAX_FRAME_NUM = 8
_MAX_FRAME_NUM = 1 << _LOG2_MAX_FRAME_NUM


def _rgb_to_ycbcr(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """BT.601 limited ("studio") range: Y in 16..235, Cb/Cr in 16..240. Never 0, which keeps I_PCM
    samples from ever forming a start-code prefix."""
    r, g, b = rgb
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    cb = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    cr = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    return (
        min(max(round(y), 16), 235),
        min(max(round(cb), 16), 240),
        min(max(round(cr), 16), 240),
    )


class _BitWriter:
    """MSB-first bit writer with the Exp-Golomb codes of H.264 clause 9.1."""

    __slots__ = ("_acc", "_nbits", "_out")

    def __init__(self) -> None:
        self._out = bytearray()
        self._acc = 0
        self._nbits = 0

    def u(self, n: int, value: int) -> None:
        """Fixed-length unsigned ``u(n)``."""
        if value < 0 or value >> n:
            raise ValueError(f"{value} does not fit in {n} bits")
        self._acc = (self._acc << n) | value
        self._nbits += n
        while self._nbits >= 8:
            self._nbits -= 8
            self._out.append((self._acc >> self._nbits) & 0xFF)
        self._acc &= (1 << self._nbits) - 1

    def flag(self, value: bool | int) -> None:
        self.u(1, 1 if value else 0)

    def ue(self, value: int) -> None:
        """Unsigned Exp-Golomb ``ue(v)``."""
        if value < 0:
            raise ValueError("ue(v) needs a non-negative value")
        code = value + 1
        self.u(2 * code.bit_length() - 1, code)

    def se(self, value: int) -> None:
        """Signed Exp-Golomb ``se(v)``: 1 -> 1, -1 -> 2, 2 -> 3, ..."""
        self.ue(2 * value - 1 if value > 0 else -2 * value)

    @property
    def byte_aligned(self) -> bool:
        return self._nbits == 0

    def align_zero(self) -> None:
        if self._nbits:
            self.u(8 - self._nbits, 0)

    def rbsp_trailing_bits(self) -> None:
        self.u(1, 1)
        self.align_zero()

    def raw(self, data: bytes) -> None:
        if not self.byte_aligned:
            raise ValueError("raw bytes need byte alignment")
        self._out += data

    def getvalue(self) -> bytes:
        if not self.byte_aligned:
            raise ValueError("bitstream is not byte aligned")
        return bytes(self._out)


def _emulation_prevent(rbsp: bytes) -> bytes:
    """Insert ``emulation_prevention_three_byte`` (0x03) after every ``00 00`` followed by a byte <= 3
    (or by the end of the payload), as clause 7.4.1 requires for every NAL unit payload."""
    pos = rbsp.find(b"\x00\x00")
    if pos < 0:
        return rbsp
    out = bytearray()
    start = 0
    n = len(rbsp)
    while pos >= 0:
        nxt = pos + 2
        if nxt >= n or rbsp[nxt] <= 3:
            out += rbsp[start:nxt]
            out.append(3)
            start = nxt
            pos = rbsp.find(b"\x00\x00", nxt)
        else:
            pos = rbsp.find(b"\x00\x00", pos + 1)
    out += rbsp[start:]
    return bytes(out)


def _nal(nal_ref_idc: int, nal_unit_type: int, rbsp: bytes) -> bytes:
    return bytes([(nal_ref_idc << 5) | nal_unit_type]) + _emulation_prevent(rbsp)


# (level_idc, MaxMBPS, MaxFS, MaxDpbMbs, MaxCPB in kbit) from H.264 Table A-1 (level 1b omitted).
_LEVELS = (
    (10, 1485, 99, 396, 175),
    (11, 3000, 396, 900, 500),
    (12, 6000, 396, 2376, 1000),
    (13, 11880, 396, 2376, 2000),
    (20, 11880, 396, 2376, 2000),
    (21, 19800, 792, 4752, 4000),
    (22, 20250, 1620, 8100, 4000),
    (30, 40500, 1620, 8100, 10000),
    (31, 108000, 3600, 18000, 14000),
    (32, 216000, 5120, 20480, 20000),
    (40, 245760, 8192, 32768, 25000),
    (41, 245760, 8192, 32768, 62500),
    (42, 522240, 8704, 34816, 62500),
    (50, 589824, 22080, 110400, 135000),
    (51, 983040, 36864, 184320, 240000),
    (52, 2073600, 36864, 184320, 240000),
    (60, 4177920, 139264, 696320, 240000),
    (61, 8355840, 139264, 696320, 480000),
    (62, 16711680, 139264, 696320, 800000),
)


def _frame_fits(level: tuple[int, int, int, int, int], mb_w: int, mb_h: int) -> bool:
    _, _, max_fs, max_dpb_mbs, _ = level
    side = math.isqrt(8 * max_fs)
    return mb_w * mb_h <= max_fs and mb_w <= side and mb_h <= side and mb_w * mb_h <= max_dpb_mbs


def _choose_level(mb_w: int, mb_h: int, fps: int) -> int:
    """Smallest level_idc whose frame size, macroblock rate and CPB size (one I_PCM frame) fit."""
    mbs = mb_w * mb_h
    idr_bits = mbs * (384 + 2) * 8 + 1024
    for level in _LEVELS:
        if _frame_fits(level, mb_w, mb_h) and mbs * fps <= level[1] and idr_bits <= level[4] * 1000:
            return level[0]
    for level in _LEVELS:  # rate or CPB too high for any level: the frame size is what matters
        if _frame_fits(level, mb_w, mb_h):
            return level[0]
    raise ValueError(f"a {mb_w * 16}x{mb_h * 16} picture exceeds H.264 level 6.2 ({mbs} macroblocks)")


class _Geometry(NamedTuple):
    width: int
    height: int
    mb_w: int
    mb_h: int

    @property
    def coded_width(self) -> int:
        return self.mb_w * 16

    @property
    def coded_height(self) -> int:
        return self.mb_h * 16

    @property
    def mbs(self) -> int:
        return self.mb_w * self.mb_h


def _geometry(width: int, height: int) -> _Geometry:
    return _Geometry(width, height, (width + 15) // 16, (height + 15) // 16)


def _sps_rbsp(geo: _Geometry, fps: int, level_idc: int) -> bytes:
    w = _BitWriter()
    w.u(8, 66)  # profile_idc: Baseline
    w.u(8, 0b11000000)  # constraint_set0 + constraint_set1 (=> Constrained Baseline), reserved zeros
    w.u(8, level_idc)
    w.ue(0)  # seq_parameter_set_id
    w.ue(_LOG2_MAX_FRAME_NUM - 4)  # log2_max_frame_num_minus4
    w.ue(2)  # pic_order_cnt_type: output order = decoding order
    w.ue(1)  # max_num_ref_frames
    w.flag(0)  # gaps_in_frame_num_value_allowed_flag
    w.ue(geo.mb_w - 1)  # pic_width_in_mbs_minus1
    w.ue(geo.mb_h - 1)  # pic_height_in_map_units_minus1
    w.flag(1)  # frame_mbs_only_flag
    w.flag(1)  # direct_8x8_inference_flag
    crop_right = (geo.coded_width - geo.width) // 2  # CropUnitX = CropUnitY = 2 for 4:2:0 frames
    crop_bottom = (geo.coded_height - geo.height) // 2
    if crop_right or crop_bottom:
        w.flag(1)  # frame_cropping_flag
        w.ue(0)  # frame_crop_left_offset
        w.ue(crop_right)
        w.ue(0)  # frame_crop_top_offset
        w.ue(crop_bottom)
    else:
        w.flag(0)
    w.flag(1)  # vui_parameters_present_flag
    w.flag(0)  # aspect_ratio_info_present_flag
    w.flag(0)  # overscan_info_present_flag
    w.flag(1)  # video_signal_type_present_flag
    w.u(3, 5)  # video_format: unspecified
    w.flag(0)  # video_full_range_flag: limited range
    w.flag(1)  # colour_description_present_flag
    w.u(8, 6)  # colour_primaries: SMPTE 170M
    w.u(8, 6)  # transfer_characteristics: SMPTE 170M
    w.u(8, 6)  # matrix_coefficients: BT.601
    w.flag(0)  # chroma_loc_info_present_flag
    w.flag(1)  # timing_info_present_flag
    w.u(32, 1)  # num_units_in_tick
    w.u(32, 2 * fps)  # time_scale (two ticks per frame)
    w.flag(1)  # fixed_frame_rate_flag
    w.flag(0)  # nal_hrd_parameters_present_flag
    w.flag(0)  # vcl_hrd_parameters_present_flag
    w.flag(0)  # pic_struct_present_flag
    w.flag(1)  # bitstream_restriction_flag
    w.flag(1)  # motion_vectors_over_pic_boundaries_flag
    w.ue(0)  # max_bytes_per_pic_denom (no limit)
    w.ue(0)  # max_bits_per_mb_denom (no limit)
    w.ue(16)  # log2_max_mv_length_horizontal
    w.ue(16)  # log2_max_mv_length_vertical
    w.ue(0)  # max_num_reorder_frames: frames can be output as soon as decoded
    w.ue(1)  # max_dec_frame_buffering
    w.rbsp_trailing_bits()
    return w.getvalue()


def _pps_rbsp() -> bytes:
    w = _BitWriter()
    w.ue(0)  # pic_parameter_set_id
    w.ue(0)  # seq_parameter_set_id
    w.flag(0)  # entropy_coding_mode_flag: CAVLC
    w.flag(0)  # bottom_field_pic_order_in_frame_present_flag
    w.ue(0)  # num_slice_groups_minus1
    w.ue(0)  # num_ref_idx_l0_default_active_minus1
    w.ue(0)  # num_ref_idx_l1_default_active_minus1
    w.flag(0)  # weighted_pred_flag
    w.u(2, 0)  # weighted_bipred_idc
    w.se(0)  # pic_init_qp_minus26
    w.se(0)  # pic_init_qs_minus26
    w.se(0)  # chroma_qp_index_offset
    w.flag(1)  # deblocking_filter_control_present_flag
    w.flag(0)  # constrained_intra_pred_flag
    w.flag(0)  # redundant_pic_cnt_present_flag
    w.rbsp_trailing_bits()
    return w.getvalue()


def _idr_slice_header() -> bytes:
    """IDR I-slice header plus the first macroblock's ``mb_type`` (I_PCM) and pcm alignment bits."""
    w = _BitWriter()
    w.ue(0)  # first_mb_in_slice
    w.ue(7)  # slice_type: I (all slices of the picture)
    w.ue(0)  # pic_parameter_set_id
    w.u(_LOG2_MAX_FRAME_NUM, 0)  # frame_num
    w.ue(0)  # idr_pic_id
    w.flag(0)  # dec_ref_pic_marking: no_output_of_prior_pics_flag
    w.flag(0)  # dec_ref_pic_marking: long_term_reference_flag
    w.se(0)  # slice_qp_delta
    w.ue(1)  # disable_deblocking_filter_idc: off
    w.ue(25)  # first macroblock's mb_type: I_PCM
    w.align_zero()  # pcm_alignment_zero_bit
    return w.getvalue()


# After an I_PCM macroblock the stream is byte aligned, so the next one starts with ue(25) = 0000 11010
# followed by seven pcm_alignment_zero_bits: exactly these two bytes.
_PCM_MB_PREFIX = b"\x0d\x00"


def _idr_nal(geo: _Geometry, idx: bytes | bytearray, palette: tuple[tuple[int, int, int], ...]) -> bytes:
    """The IDR picture: every macroblock I_PCM, samples taken from the palette-index card image.

    I_PCM stores each macroblock's 16x16 luma then 8x8 Cb and Cr samples, so the picture is reordered
    from raster to macroblock order. That is done on views of 8-byte units (8 samples of one row of
    one macroblock) with a few dozen strided slice assignments, not by slicing every macroblock.
    """
    w, cw, ch = geo.width, geo.coded_width, geo.coded_height
    rows = [idx[y * w : (y + 1) * w] for y in range(geo.height)]
    if cw != w:  # pad right and bottom with background up to whole MBs
        pad = bytes([_BG]) * (cw - w)
        rows = [row + pad for row in rows]
    rows += [bytes([_BG]) * cw] * (ch - geo.height)
    mb_h, mbs = geo.mb_h, geo.mbs
    # Block r holds row r of every macroblock row, top to bottom, so macroblock k's row r is at byte
    # 16 * k of luma block r (8 * k of chroma block r). 4:2:0 chroma: the top-left sample of each 2x2
    # block (the card is flat colour, so this is exact everywhere but on glyph edges).
    luma = b"".join([rows[16 * mby + r] for r in range(16) for mby in range(mb_h)])
    chroma = b"".join([rows[16 * mby + 2 * r][::2] for r in range(8) for mby in range(mb_h)])
    ycc = [_rgb_to_ycbcr(c) for c in palette]
    y_units = memoryview(luma.translate(_lookup_table([c[0] for c in ycc], 16))).cast("Q")
    cb_units = memoryview(chroma.translate(_lookup_table([c[1] for c in ycc], 128))).cast("Q")
    cr_units = memoryview(chroma.translate(_lookup_table([c[2] for c in ycc], 128))).cast("Q")
    # 48 units per macroblock: luma row r at 2r and 2r + 1, then the 8 Cb rows, then the 8 Cr rows.
    # Units are only moved, never interpreted, so the machine's byte order does not matter.
    samples = bytearray(384 * mbs)
    mb_units = memoryview(samples).cast("Q")
    n = 2 * mbs
    for r in range(16):
        mb_units[2 * r :: 48] = y_units[r * n : (r + 1) * n : 2]
        mb_units[2 * r + 1 :: 48] = y_units[r * n + 1 : (r + 1) * n : 2]
    for r in range(8):
        mb_units[32 + r :: 48] = cb_units[r * mbs : (r + 1) * mbs]
        mb_units[40 + r :: 48] = cr_units[r * mbs : (r + 1) * mbs]

    view = memoryview(samples)
    parts: list[bytes | memoryview] = [view[i : i + 384] for i in range(0, 384 * mbs, 384)]
    # Emulation prevention need not scan the samples: they are never 0 (see _rgb_to_ycbcr), and the
    # only other zero bytes, the second byte of each _PCM_MB_PREFIX, are followed by a sample. Any
    # 00 00 is thus in the slice header, and the first macroblock is enough context for it.
    parts[0] = _nal(3, 5, _idr_slice_header() + parts[0])
    parts[-1] = bytes(parts[-1]) + b"\x80"  # rbsp_slice_trailing_bits: stop bit + alignment
    return _PCM_MB_PREFIX.join(parts)


def _p_skip_rbsp(mbs: int, frame_num: int) -> bytes:
    """A P picture in which every macroblock is P_Skip: an exact copy of the previous picture."""
    w = _BitWriter()
    w.ue(0)  # first_mb_in_slice
    w.ue(5)  # slice_type: P (all slices of the picture)
    w.ue(0)  # pic_parameter_set_id
    w.u(_LOG2_MAX_FRAME_NUM, frame_num)
    w.flag(0)  # num_ref_idx_active_override_flag
    w.flag(0)  # ref_pic_list_modification_flag_l0
    w.flag(0)  # dec_ref_pic_marking: adaptive_ref_pic_marking_mode_flag (sliding window)
    w.se(0)  # slice_qp_delta
    w.ue(1)  # disable_deblocking_filter_idc: off
    w.ue(mbs)  # mb_skip_run: the whole picture
    w.rbsp_trailing_bits()
    return w.getvalue()


# Bit offset of frame_num in _p_skip_rbsp: first_mb_in_slice ue(0), slice_type ue(5) and
# pic_parameter_set_id ue(0) take 1 + 5 + 1 bits.
_P_FRAME_NUM_BIT = 7


@functools.lru_cache(maxsize=32)
def _p_skip_samples(mbs: int) -> tuple[bytes, ...]:
    """The MP4 samples (4-byte length + NAL unit) of the P_Skip picture for every frame_num.

    They differ only in the fixed-width frame_num field, so the slice is written once and each
    frame_num is OR-ed into it.
    """
    rbsp = _p_skip_rbsp(mbs, 0)
    base = int.from_bytes(rbsp, "big")
    shift = 8 * len(rbsp) - _P_FRAME_NUM_BIT - _LOG2_MAX_FRAME_NUM
    samples = []
    for frame_num in range(_MAX_FRAME_NUM):
        nal = _nal(2, 1, (base | frame_num << shift).to_bytes(len(rbsp), "big"))
        samples.append(struct.pack(">I", len(nal)) + nal)
    return tuple(samples)
