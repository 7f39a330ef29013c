"""Questions about a text column answered from its Arrow buffers with numpy, for ASCII bytes.

UTF-8 never uses an ASCII byte (below 0x80) inside a multi-byte character, so "does this
value hold an E", "is it all ASCII digits" or "can it start or end with white space" can be
answered byte by byte, over the whole column at once, much faster than a string kernel that
looks at each value in turn. Missing values count as empty.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

Bytes = npt.NDArray[np.uint8]
Flags = npt.NDArray[np.bool_]
Offsets = npt.NDArray[np.int64]


def one_chunk(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The array in one chunk: a reader's many chunks make every vectorized rule pay its set-up
    (such as compiling a pattern) once per chunk."""
    if isinstance(array, pa.ChunkedArray):
        return array.combine_chunks()
    return array


def _chunks(texts: pd.Series | pa.Array | pa.ChunkedArray) -> Iterator[tuple[pa.Array, int]]:
    """Each Arrow chunk of ``texts`` as string or large_string, with its first row's index."""
    data = texts if isinstance(texts, pa.Array | pa.ChunkedArray) else pa.array(texts)
    start = 0
    for chunk in data.chunks if isinstance(data, pa.ChunkedArray) else [data]:
        if chunk.type not in (pa.string(), pa.large_string()):
            chunk = chunk.cast(pa.large_string())
        yield chunk, start
        start += len(chunk)


def _buffers(chunk: pa.Array) -> tuple[Offsets, Bytes]:
    """The chunk's len + 1 offsets (int64) and its whole data buffer."""
    _, offset_buffer, data_buffer = chunk.buffers()
    width = 4 if chunk.type == pa.string() else 8
    offsets: Offsets = np.frombuffer(
        offset_buffer, np.int32 if width == 4 else np.int64, len(chunk) + 1, chunk.offset * width
    ).astype(np.int64, copy=False)
    data: Bytes = (
        np.frombuffer(data_buffer, np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    )
    return offsets, data


def _valid(chunk: pa.Array) -> Flags:
    valid: Flags = chunk.is_valid().to_numpy(zero_copy_only=False).astype(bool)
    return valid


def rows_with_byte(
    texts: pd.Series | pa.Array | pa.ChunkedArray, hit: Callable[[Bytes], Flags]
) -> Flags:
    """Per row, whether its value holds a byte for which ``hit`` (on a uint8 array) is True."""
    found = np.zeros(len(texts), dtype=bool)
    for chunk, start in _chunks(texts):
        size = len(chunk)
        if size == 0:
            continue
        here = found[start : start + size]
        offsets, data = _buffers(chunk)
        first, end = int(offsets[0]), int(offsets[-1])
        if end == first:
            continue  # all empty
        hits = hit(data[first:end])
        positions = np.flatnonzero(hits)
        if len(positions) <= size:  # few: find each one's row
            here[np.searchsorted(offsets, positions + first, side="right") - 1] = True
        else:  # many: one "any" per row (the padding gives a trailing empty row an index)
            any_hit = np.logical_or.reduceat(np.append(hits, False), offsets[:-1] - first)
            here[:] = any_hit & (offsets[1:] > offsets[:-1])
        if chunk.null_count:
            here &= _valid(chunk)
    return found


def is_e(data: Bytes) -> Flags:
    folded = data | 0x20  # "E" is 0x45 and "e" 0x65; no other byte gives 0x65
    found: Flags = folded == ord("e")
    return found


def not_ascii_digit(data: Bytes) -> Flags:
    shifted = (data - ord("0")).astype(np.uint8)  # wraps below "0"
    found: Flags = shifted > 9
    return found


def is_separator(data: Bytes) -> Flags:
    found: Flags = (data == ord(",")) | (data == ord("."))
    return found


def _printable(data: Bytes) -> Flags:
    """Printable ASCII other than space: no white space character starts or ends with such a
    byte (every non-ASCII character, white space or not, starts and ends with bytes >= 0x80)."""
    found: Flags = (data > 0x20) & (data < 0x7F)
    return found


def edge_rows(texts: pd.Series | pa.Array | pa.ChunkedArray) -> Flags:
    """Per row, whether its value could start or end with white space: it is not empty, and its
    first or last byte is not printable ASCII. A value where this is False is its own strip."""
    found = np.zeros(len(texts), dtype=bool)
    for chunk, start in _chunks(texts):
        size = len(chunk)
        offsets, data = _buffers(chunk)
        if size == 0 or len(data) == 0:
            continue
        last = len(data) - 1  # (the clipping only ever moves the index of an empty value)
        firsts = data[np.minimum(offsets[:-1], last)]
        lasts = data[np.clip(offsets[1:] - 1, 0, last)]
        plain = _printable(firsts) & _printable(lasts)
        here = found[start : start + size]
        here[:] = ~plain & (offsets[1:] > offsets[:-1])
        if chunk.null_count:
            here &= _valid(chunk)
    return found


def leading_zero_rows(texts: pd.Series | pa.Array | pa.ChunkedArray) -> Flags:
    """Per row, whether its value starts with "0"."""
    found = np.zeros(len(texts), dtype=bool)
    for chunk, start in _chunks(texts):
        size = len(chunk)
        offsets, data = _buffers(chunk)
        filled = np.flatnonzero(offsets[1:] > offsets[:-1])
        here = found[start : start + size]
        here[filled[data[offsets[:-1][filled]] == ord("0")]] = True
        if chunk.null_count:
            here &= _valid(chunk)
    return found


Hashes = npt.NDArray[np.uint64]
_MULTIPLIERS = (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9)
# The low k bytes of a little-endian word (k = 0..8).
_LOW_BYTES = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [2**64 - 1], dtype=np.uint64)


def mix(*columns: npt.NDArray[np.int64] | Hashes) -> Hashes:
    """Up to three integer columns mixed into one 64-bit hash per row (multiplications wrap,
    as hashes do). Equal rows give equal hashes; unequal ones may too, rarely."""
    mixed = np.zeros(len(columns[0]), dtype=np.uint64)
    for column, multiplier in zip(columns, _MULTIPLIERS, strict=False):
        mixed ^= (mixed >> np.uint64(29)) + column.astype(np.uint64) * np.uint64(multiplier)
    return mixed


def text_hashes(texts: pd.Series | pa.Array | pa.ChunkedArray) -> Hashes:
    """A 64-bit hash per value, of its first 8 bytes, its last 8 bytes and its length (cheap:
    three words per value, whatever its length). Equal texts give equal hashes; missing values
    all give the same one."""
    hashes = np.zeros(len(texts), dtype=np.uint64)
    for chunk, start in _chunks(texts):
        size = len(chunk)
        if size == 0:
            continue
        offsets, data = _buffers(chunk)
        first, end = int(offsets[0]), int(offsets[-1])
        # 8 zero bytes either side, so that a word can be read at any value's start or end.
        padded = np.zeros(end - first + 16, dtype=np.uint8)
        padded[8 : 8 + end - first] = data[first:end]
        words = np.ndarray((len(padded) - 7,), dtype="<u8", buffer=padded, strides=(1,))
        starts = offsets[:-1] - first + 8
        ends = offsets[1:] - first + 8
        lengths = ends - starts
        head = words[starts] & _LOW_BYTES[np.minimum(lengths, 8)]
        tail = np.where(lengths > 8, words[ends - 8], np.uint64(0)).astype(np.uint64)
        here = mix(head, tail, lengths)
        if chunk.null_count:
            here[~_valid(chunk)] = 0
        hashes[start : start + size] = here
    return hashes


def repeated_hashes(hashes: Hashes) -> npt.NDArray[np.intp]:
    """The rows whose hash another row has too, in order."""
    # First a cheap count of the hashes' top bits (~4 buckets per row, 32 MiB at most), then
    # an exact duplicated() over the rows that share a bucket.
    bits = min(22, max(8, len(hashes).bit_length() + 2))
    buckets = (hashes >> np.uint64(64 - bits)).astype(np.intp)
    candidates = np.flatnonzero(np.bincount(buckets, minlength=1 << bits)[buckets] > 1)
    same = pd.Series(hashes[candidates]).duplicated(keep=False).to_numpy(dtype=bool)
    rows: npt.NDArray[np.intp] = candidates[same]
    return rows


def repeated(texts: pd.Series) -> Flags:
    """``texts.duplicated(keep=False)`` as a numpy array: the rows whose value another row has
    too. Hashes find the candidates; the values themselves decide among them."""
    found = np.zeros(len(texts), dtype=bool)
    candidates = repeated_hashes(text_hashes(texts))
    if len(candidates):
        same = texts.iloc[candidates].duplicated(keep=False).to_numpy(dtype=bool)
        found[candidates[same]] = True
    return found
