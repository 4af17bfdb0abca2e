"""Which input rows a sliding window reads: the rule behind the ``unused-input`` lint.

On one axis of size n, window o (0 ≤ o < m, m from :func:`window_out`) starts
at w_o = o·s − p_left and its tap t (0 ≤ t < k) reads w_o + t·d, so the real
rows read are

    R = {w_0 + o·s + t·d : 0 ≤ o < m, 0 ≤ t < k} ∩ [0, n).

Padding rows are never "unused": only real rows outside R are. A 2-D window is
the product of two such axes, so a pixel is unread exactly when its row or its
column is.

Sizes may be 10¹², so R is never enumerated. With A = (k−1)·d (the kernel's
span) and B = (m−1)·s (the starts' span), the positions w_0 + x split into:

- a middle zone, x ∈ [min(A,B), max(A,B)], where x is read iff x mod s is one
  of {t·d mod s} (when B ≥ A; every tap fits for every window there), or iff
  x mod d is one of {o·s mod d} (when A > B): a periodic pattern, counted in
  closed form;
- two edge zones of length min(A,B) on either side, read completely when
  s = 1 or d = 1, otherwise tested row by row in O(1) each (bounded);
- the rows after w_0 + A + B, never read (the "trailing" rows).

Where a bound would be exceeded (a dilated kernel and a stride both beyond
:data:`CAP`), the answer is a true lower bound and says "at least".
"""

import bisect
import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

from archspec.layers.base import Finding, Shape, fmt_shape, window_out
from archspec.lints import declare

UNUSED_INPUT = declare(
    "unused-input",
    "a sliding window (conv2d, pools, subsample) reads no pixel of some real rows or columns "
    "of its input: trailing ones, ones skipped when the stride exceeds the window, or holes "
    "left by dilation; padding is never counted",
    "tests/test_lint_unused_pixels.py::test_unread_rows_match_pytorch",
)

CAP = 10_000
"""Most rows tested one by one, or residues sorted, per axis; beyond it the count is a lower bound."""

_RUNS_SHOWN = 4  # runs of unread rows listed before "…"
_RUNS_EXACT = 4096  # runs gathered to recognise "every q-th row" exactly


@dataclass(frozen=True)
class Axis:
    """One axis of a window, as PyTorch lays it out: the left side gets ⌊pad_total/2⌋.

    ('same' padding with an odd total puts the extra row on the right, as PyTorch does.)
    """

    size: int
    kernel: int
    stride: int
    pad_total: int = 0
    dilation: int = 1
    ceil: bool = False

    @property
    def pad_left(self) -> int:
        return self.pad_total // 2

    @property
    def outputs(self) -> int:
        return window_out(
            self.size, self.kernel, self.stride, self.pad_total, self.dilation, self.ceil
        )

    def resized(self, size: int) -> "Axis":
        return Axis(size, self.kernel, self.stride, self.pad_total, self.dilation, self.ceil)

    def reads(self, row: int) -> bool:
        """True when some window tap reads real row ``row``: O(1), by solving o·s + t·d = y."""
        if not 0 <= row < self.size:
            return False
        s, d, k, m = self.stride, self.dilation, self.kernel, self.outputs
        y = row + self.pad_left
        g = math.gcd(s, d)
        if y % g:
            return False
        s1, d1, y1 = s // g, d // g, y // g
        t0 = (y1 * pow(d1, -1, s1)) % s1 if s1 > 1 else 0
        # t ≡ t0 (mod s1), 0 ≤ t < k, t·d ≤ y, y − t·d ≤ (m−1)·s.
        if m <= 0:
            return False
        t_lo = max(0, -(-(y - (m - 1) * s) // d))
        t_hi = min(k - 1, y // d)
        t = t_lo + (t0 - t_lo) % s1
        return t <= t_hi


@dataclass(frozen=True)
class _Periodic:
    """Rows lo..hi (inclusive) read iff (row − origin) mod period is in ``read`` (sorted offsets)."""

    lo: int
    hi: int
    origin: int
    period: int
    read: range | list[int]

    def count_read(self) -> int:
        if self.hi < self.lo:
            return 0
        return self._read_below(self.hi + 1) - self._read_below(self.lo)

    def _read_below(self, x: int) -> int:
        """Read rows r < x with r ≥ origin (counts differences only, so any anchor works)."""
        q, r = divmod(x - self.origin, self.period)
        return q * len(self.read) + self._offsets_below(r)

    def _offsets_below(self, r: int) -> int:
        """How many read offsets are below r, for 0 ≤ r < period."""
        if isinstance(self.read, range):  # the multiples of g below r
            return -(-r // self.read.step)
        return bisect.bisect_left(self.read, r)

    def _gaps(self) -> Iterator[tuple[int, int]]:
        """Unread offset runs (a, b) of one period, a ≤ b, b possibly ≥ period (wrapping)."""
        read = self.read
        n = len(read)
        for i in range(n):
            nxt = read[i + 1] if i + 1 < n else read[0] + self.period
            if nxt > read[i] + 1:
                yield read[i] + 1, nxt - 1

    def runs(self, start: int) -> Iterator[tuple[int, int]]:
        """Unread runs at or after row ``start``, in increasing order (lazily; they may touch)."""
        first = max(self.lo, start)
        if self.hi < first:
            return
        if isinstance(self.read, range):  # one coset of g read: the g − 1 rows between
            g = self.read.step
            a = self.origin + ((first - self.origin) // g) * g + 1
            while a <= self.hi:
                lo, hi = max(a, first), min(a + g - 2, self.hi)
                if lo <= hi:
                    yield lo, hi
                a += g
            return
        base = self.origin + ((first - self.origin) // self.period - 1) * self.period
        while base <= self.hi:
            for a, b in self._gaps():
                lo, hi = max(base + a, first), min(base + b, self.hi)
                if lo <= hi:
                    yield lo, hi
            base += self.period

    def last(self) -> int | None:
        """The last unread row, found from the end without walking the zone."""
        if self.hi < self.lo:
            return None
        if isinstance(self.read, range):
            g = self.read.step
            row = self.hi if (self.hi - self.origin) % g else self.hi - 1
            return row if g > 1 and row >= self.lo else None
        best = None
        base = self.origin + ((self.hi - self.origin) // self.period + 1) * self.period
        for _ in range(4):  # a gap wrapping out of an earlier period may end in a later one
            for a, b in self._gaps():
                lo, hi = max(base + a, self.lo), min(base + b, self.hi)
                if lo <= hi:
                    best = hi if best is None else max(best, hi)
            if best is not None:
                return best
            base -= self.period
        return best


@dataclass(frozen=True)
class Unread:
    """The real rows of one axis that no window reads: their count and their runs, in order."""

    axis: Axis
    count: int
    exact: bool  # False: count and runs are a lower bound (see CAP)
    _zones: tuple[tuple[int, int] | _Periodic | list[tuple[int, int]], ...]

    def runs(self, start: int = 0) -> Iterator[tuple[int, int]]:
        """Maximal runs (first, last) of consecutive unread rows, in increasing order.

        Lazy, so a caller takes the first few of 10¹¹; ``start`` skips to the runs that
        end at or after that row (the first one clipped to it).
        """
        pending: tuple[int, int] | None = None
        for run in self._raw_runs(start):
            if pending is not None and run[0] <= pending[1] + 1:
                pending = (pending[0], max(pending[1], run[1]))
                continue
            if pending is not None:
                yield pending
            pending = run
        if pending is not None:
            yield pending

    def _raw_runs(self, start: int) -> Iterator[tuple[int, int]]:
        for zone in self._zones:
            if isinstance(zone, _Periodic):
                yield from zone.runs(start)
                continue
            for a, b in zone if isinstance(zone, list) else [zone]:
                if b >= start:
                    yield max(a, start), b

    def last(self) -> int | None:
        for zone in reversed(self._zones):
            if isinstance(zone, _Periodic):
                found = zone.last()
            elif isinstance(zone, list):
                found = zone[-1][1] if zone else None
            else:
                found = zone[1]
            if found is not None:
                return found
        return None

    @cached_property
    def trailing(self) -> int:
        """How many of the axis's last rows, one after another, are unread."""
        n = self.axis.size
        if not self._zones or self.last() != n - 1:
            return 0
        zone = self._zones[-1]
        first = zone[0] if isinstance(zone, tuple) else n - 1
        while first > 0 and n - first < CAP and not self.axis.reads(first - 1):
            first -= 1
        return n - first

    def rows(self) -> set[int]:
        """Every unread row (for tests and small axes; never call it on a huge one)."""
        return {r for a, b in self.runs() for r in range(a, b + 1)}


def unread(axis: Axis) -> Unread:
    """The real rows that no window of ``axis`` reads, computed in O(min(k, s, CAP)) steps."""
    n, s, d, k, m = axis.size, axis.stride, axis.dilation, axis.kernel, axis.outputs
    if m <= 0:
        return Unread(axis, 0, True, ())
    w0 = -axis.pad_left
    span_k, span_m = (k - 1) * d, (m - 1) * s
    end = w0 + span_k + span_m  # the last row any tap reads
    if span_m >= span_k:
        period, step, count, edge = s, d, k, span_k
    else:
        period, step, count, edge = d, s, m, span_m
    zones: list[tuple[int, int] | _Periodic | list[tuple[int, int]]] = []
    exact = True
    unread_count = 0

    def add_edge(lo: int, hi: int) -> None:
        nonlocal exact, unread_count
        lo, hi = max(lo, 0), min(hi, n - 1)
        if lo > hi or s == 1 or d == 1:  # with a unit stride or dilation the edges are all read
            return
        if hi - lo + 1 > CAP:
            exact = False
            return
        runs: list[tuple[int, int]] = []
        for r in range(lo, hi + 1):
            if not axis.reads(r):
                unread_count += 1
                if runs and runs[-1][1] == r - 1:
                    runs[-1] = (runs[-1][0], r)
                else:
                    runs.append((r, r))
        if runs:
            zones.append(runs)

    if w0 > 0:  # (padding is never negative; kept for a window that starts late)
        zones.append((0, min(w0, n) - 1))
        unread_count += min(w0, n)
    add_edge(w0, w0 + edge - 1)
    mid_lo, mid_hi = max(w0 + edge, 0), min(end - edge, n - 1)
    if mid_lo <= mid_hi:
        g = math.gcd(step, period)
        residues = min(count, period // g)
        read: range | list[int] | None
        if count >= period // g:
            read = range(0, period, g)  # every tap residue occurs: one coset of g
        elif residues <= CAP:
            read = sorted({(i * step) % period for i in range(count)})
        else:
            read = None
            exact = False
        if read is not None:
            zone = _Periodic(mid_lo, mid_hi, w0, period, read)
            missing = (mid_hi - mid_lo + 1) - zone.count_read()
            if missing:
                zones.append(zone)
                unread_count += missing
    add_edge(end - edge + 1, end)
    if end + 1 <= n - 1:
        zones.append((max(end + 1, 0), n - 1))
        unread_count += n - 1 - max(end + 1, 0) + 1
    return Unread(axis, unread_count, exact, tuple(zones))


# --------------------------------------------------------------------------- the finding


def _describe(u: Unread, noun: str) -> str:
    """'row 223', 'the last 3 rows (221–223)', 'every other row (1, 3, …, 55)', 'rows 0, 4–6, …'."""
    nouns = f"{noun}s"
    runs: list[tuple[int, int]] = []
    complete = True
    for run in u.runs():
        if len(runs) == _RUNS_EXACT:
            complete = False
            break
        runs.append(run)
    last = u.last()

    def span(a: int, b: int) -> str:
        return f"{a:,}" if a == b else f"{a:,}–{b:,}"

    if u.exact and complete and len(runs) == 1:
        a, b = runs[0]
        where = ""
        if b == u.axis.size - 1:
            where = "the last " if a > 0 else "all "
        elif a == 0:
            where = "the first "
        if a == b:
            return f"{where}{noun} {a:,}" if not where else f"{where}{noun} ({a:,})"
        return f"{where}{b - a + 1:,} {nouns} ({a:,}–{b:,})"
    if (
        u.exact
        and complete
        and len(runs) > 2
        and all(a == b for a, b in runs)
        and len({runs[i + 1][0] - runs[i][0] for i in range(len(runs) - 1)}) == 1
    ):
        q = runs[1][0] - runs[0][0]
        every = "every other" if q == 2 else f"every {_ordinal(q)}"
        return f"{every} {noun} ({runs[0][0]:,}, {runs[1][0]:,}, …, {runs[-1][0]:,})"
    shown = [span(a, b) for a, b in runs[:_RUNS_SHOWN]]
    if len(runs) > _RUNS_SHOWN or not complete:
        shown.append("…")
        if last is not None:
            tail = next(((a, b) for a, b in reversed(runs) if b == last), (last, last))
            shown.append(span(*tail) if complete else f"{last:,}")
    return f"{nouns} {', '.join(shown)}"


def _ordinal(q: int) -> str:
    suffix = "th" if 10 <= q % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(q % 10, "th")
    return f"{q}{suffix}"


def _fits(axis: Axis, u: Unread) -> list[int]:
    """Input sizes near this one that the same window reads completely, verified by the rule.

    The candidates drop the trailing unread rows, or add rows up to the next window's end;
    each is kept only when :func:`unread` finds no unread row at that size, so a pattern
    no size fixes (a stride wider than the window) gets no hint.
    """
    n = axis.size
    cut = n - u.trailing
    found = []
    for size in sorted({cut, cut + axis.stride}):
        if size <= 0 or size == n:
            continue
        other = axis.resized(size)
        if other.outputs > 0:
            check = unread(other)
            if check.exact and check.count == 0:
                found.append(size)
    return found


def window_axes(
    shape: Shape,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    pad_total: tuple[int, int],
    dilation: tuple[int, int] = (1, 1),
    ceil: bool = False,
) -> tuple[Axis, Axis]:
    """The rows and columns axes of a window sliding over C×H×W."""
    h, w = (
        Axis(n, k, s, p, d, ceil)
        for n, k, s, p, d in zip(shape[1:], kernel, stride, pad_total, dilation, strict=True)
    )
    return h, w


def window_lint(shape: Shape, axes: tuple[Axis, Axis]) -> list[Finding]:
    """Warn when some real rows or columns of the input are read by no window.

    That is legal (PyTorch floors the output size, and a stride wider than the
    window skips rows on purpose in ResNet's 1×1 downsampling) but often a
    mistake, like d2l's AlexNet conv1, 11×11/4 without padding on 224×224: no
    window reads row 223 or column 223. Padding rows never count. The hint names
    input sizes that :func:`unread` verifies are read completely, if any.
    """
    found = [unread(a) for a in axes]
    if not any(u.count for u in found):
        return []
    parts, counts = [], []
    for u, noun in zip(found, ("row", "column"), strict=True):
        if not u.count:
            continue
        at_least = "" if u.exact else "at least "
        counts.append(f"{at_least}{u.count:,} {noun}{'s' if u.count > 1 else ''}")
        parts.append(_describe(u, noun))
    fits = [_fits(a, u) if u.count else [a.size] for a, u in zip(axes, found, strict=True)]
    hint = None
    if all(fits):
        options = sorted({(fits[0][0], fits[1][0]), (fits[0][-1], fits[1][-1])}, reverse=True)
        sizes = " or ".join(f"{h}×{w}" for h, w in options)
        hint = f"an input of {sizes} uses every pixel"
    kernel = (axes[0].kernel, axes[1].kernel)
    stride = (axes[0].stride, axes[1].stride)
    dilation = (axes[0].dilation, axes[1].dilation)
    return [
        Finding(
            f"the window (kernel {fmt_shape(kernel)}, stride {fmt_shape(stride)}"
            f"{f', dilation {fmt_shape(dilation)}' if dilation != (1, 1) else ''}) "
            f"reads no pixel of {' and '.join(counts)} of its {fmt_shape(shape)} input: "
            f"{' and '.join(parts)}",
            field="kernel",
            hint=hint,
            lint=UNUSED_INPUT.code,
        )
    ]
