"""Per-series sliding windows for rate(), delta(), avg_over(), max_over(), min_over() and
predict_linear(), in bounded memory.

A window of span W keeps at most BUCKETS+1 buckets of width W/BUCKETS in one flat
`array('d')` (no per-sample objects): each bucket holds its first and last sample (raw and
reset-adjusted), count, sum, min and max. So memory per series is fixed (≤ 720 bytes of data)
however dense the samples are, and every function is O(buckets). The price: a function over
window w reads the buckets whose last sample is within w, so its span can reach back up to one
bucket width (W/8) further than w. With one sample per bucket (the common case: W/8 ≥ the poll
interval) the answer is exact.

Counter resets (a value lower than the previous one: the device rebooted) are absorbed the way
Prometheus does: the adjusted value keeps rising, so rate() never goes negative.
"""

from __future__ import annotations

import math
from array import array

BUCKETS = 8
_STRIDE = 10  # t_first, v_first, a_first, t_last, v_last, a_last, n, sum, min, max
NAN = math.nan


class Window:
    __slots__ = ("buf", "width", "span", "offset", "last_raw")

    def __init__(self, span: float) -> None:
        self.buf = array("d")
        self.span = span
        self.width = span / BUCKETS
        self.offset = 0.0
        self.last_raw = NAN

    def add(self, ts: float, v: float) -> None:
        """Append a sample; older-than-last samples are the caller's to drop."""
        last = self.last_raw
        if v < last:  # counter reset: it restarted from zero, so v itself is increase
            self.offset += last
        self.last_raw = v
        a = v + self.offset
        buf = self.buf
        n = len(buf)
        if n and ts < buf[n - _STRIDE] + self.width:
            i = n - _STRIDE
            buf[i + 3] = ts
            buf[i + 4] = v
            buf[i + 5] = a
            buf[i + 6] += 1.0
            buf[i + 7] += v
            if v < buf[i + 8]:
                buf[i + 8] = v
            if v > buf[i + 9]:
                buf[i + 9] = v
        else:
            buf.extend((ts, v, a, ts, v, a, 1.0, v, v, v))
            horizon = ts - self.span
            drop = 0
            while drop + _STRIDE < len(buf) and buf[drop + 3] < horizon:
                drop += _STRIDE
            if drop:
                del buf[:drop]

    def _start(self, now: float, w: float) -> int:
        """Offset of the first bucket whose last sample lies within `w` of `now`."""
        buf = self.buf
        horizon = now - w
        i = 0
        n = len(buf)
        while i < n and buf[i + 3] < horizon:
            i += _STRIDE
        return i

    def rate(self, now: float, w: float) -> float:
        """Per-second increase of a counter over w, reset-aware; NaN below two samples."""
        buf = self.buf
        i = self._start(now, w)
        j = len(buf) - _STRIDE
        if i > j:
            return NAN
        dt = buf[j + 3] - buf[i]
        return (buf[j + 5] - buf[i + 2]) / dt if dt > 0 else NAN

    def delta(self, now: float, w: float) -> float:
        """Last minus first value of a gauge over w; NaN below two samples."""
        buf = self.buf
        i = self._start(now, w)
        j = len(buf) - _STRIDE
        if i > j or buf[j + 3] <= buf[i]:
            return NAN
        return buf[j + 4] - buf[i + 1]

    def avg(self, now: float, w: float) -> float:
        buf = self.buf
        i = self._start(now, w)
        n = s = 0.0
        while i < len(buf):
            n += buf[i + 6]
            s += buf[i + 7]
            i += _STRIDE
        return s / n if n else NAN

    def max(self, now: float, w: float) -> float:
        buf = self.buf
        i = self._start(now, w)
        return max(buf[i + 9::_STRIDE]) if i < len(buf) else NAN

    def min(self, now: float, w: float) -> float:
        buf = self.buf
        i = self._start(now, w)
        return min(buf[i + 8::_STRIDE]) if i < len(buf) else NAN

    def predict_linear(self, now: float, w: float, ahead: float) -> float:
        """Least-squares line through the window (each bucket's first and last samples),
        read `ahead` seconds after `now`. NaN until the data covers half of w: a slope
        from a sliver of the window is noise."""
        buf = self.buf
        i = self._start(now, w)
        n = len(buf)
        if n - i < _STRIDE or buf[n - _STRIDE + 3] - buf[i] < w / 2:
            return NAN
        t0 = buf[i]
        k = st = sv = stt = stv = 0.0
        while i < n:
            for t, v in ((buf[i], buf[i + 1]), (buf[i + 3], buf[i + 4])):
                t -= t0
                k += 1
                st += t
                sv += v
                stt += t * t
                stv += t * v
            i += _STRIDE
        den = k * stt - st * st
        if den <= 0:
            return NAN
        slope = (k * stv - st * sv) / den
        intercept = (sv - slope * st) / k
        return intercept + slope * (now - t0 + ahead)
