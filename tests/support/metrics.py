"""Reading `/metrics`: the Prometheus text format parsed strictly, and samples looked up."""

from __future__ import annotations

import math
import re

import httpx

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
SAMPLE = re.compile(
    rf'^(?P<name>{NAME})(?:\{{(?P<labels>(?:[^"}}]|"(?:[^"\\\n]|\\.)*")*)\}})? (?P<value>\S+)$'
)
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
COMMENT = re.compile(rf"^# (?P<keyword>HELP|TYPE) (?P<name>{NAME}) (?P<text>.*)$")
# what Prometheus sets on every series of a target at scrape time: a label of the same name
# in the text would be renamed `exported_...`
TARGET_LABELS = {"instance", "job"}
# units that are not the base ones (seconds, bytes)
NOT_BASE_UNITS = re.compile(
    r"_(ms|msec|millis|milliseconds|us|microseconds|ns|nanoseconds|minutes|hours|days"
    r"|kb|kib|mb|mib|gb|gib|kilobytes|megabytes|bits)(_|$)"
)
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}

Samples = list[tuple[str, dict[str, str], float]]


def parse_metrics(text: str) -> Samples:
    """The Prometheus text format (0.0.4), strictly: every line a HELP, a TYPE or a
    well-formed sample; a family's HELP and TYPE once each, before its samples, and its lines
    together; counters end in `_total`, units are base units, histograms are cumulative and
    end at `+Inf` with their count; no series twice, no label Prometheus sets itself."""
    assert text.endswith("\n"), "the text ends with a line feed"
    samples: Samples = []
    kinds: dict[str, str] = {}
    helped: set[str] = set()
    finished: set[str] = set()  # families whose lines are over
    sampled: set[str] = set()  # families with samples already
    current = ""
    series: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    buckets: dict[tuple[str, tuple[tuple[str, str], ...]], list[tuple[float, float]]] = {}
    counts: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}

    def enter(family: str) -> None:
        nonlocal current
        if family != current:
            assert family not in finished, f"the lines of {family} are not together"
            if current:
                finished.add(current)
            current = family

    for line in text.splitlines():
        assert line, "no empty lines"
        if line.startswith("#"):
            comment = COMMENT.match(line)
            assert comment, f"not a HELP or TYPE line: {line!r}"
            name = comment["name"]
            enter(name)
            assert name not in sampled, f"{line!r} after samples of its family"
            if comment["keyword"] == "HELP":
                assert name not in helped, f"second HELP for {name}"
                assert comment["text"].strip(), f"empty HELP for {name}"
                helped.add(name)
            else:
                assert name not in kinds, f"second TYPE for {name}"
                assert comment["text"] in SUFFIXES, line
                kinds[name] = comment["text"]
                if kinds[name] == "counter":
                    assert name.endswith("_total"), f"counter {name} does not end in _total"
                assert not NOT_BASE_UNITS.search(name), f"{name}: use _seconds or _bytes"
            continue
        match = SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name = match["name"]
        family = current
        kind = kinds.get(family)
        assert kind is not None, f"{name}: no TYPE before it"
        assert family in helped, f"{name}: no HELP before it"
        suffixes = SUFFIXES[kind]
        assert any(name == family + suffix for suffix in suffixes) or (
            kind == "counter" and name == family
        ), f"{name} is not a sample of the {kind} {family}"
        label_text = match["labels"] or ""
        pairs = LABEL.findall(label_text)
        assert ",".join(f'{key}="{val}"' for key, val in pairs) == label_text, (
            f"malformed labels: {line!r}"
        )
        labels = dict(pairs)
        assert len(labels) == len(pairs), f"a label twice: {line!r}"
        assert not TARGET_LABELS & set(labels), f"{line!r}: Prometheus sets that label itself"
        assert not any(key.startswith("__") for key in labels), line
        number = float(match["value"])  # also takes +Inf, -Inf, NaN
        key = (name, tuple(sorted(labels.items())))
        assert key not in series, f"a series twice: {line!r}"
        series.add(key)
        if kind == "counter":
            assert number >= 0, f"a counter below zero: {line!r}"
        if kind == "histogram":
            base = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
            if name.endswith("_bucket"):
                bound = float(labels["le"])
                buckets.setdefault((family, base), []).append((bound, number))
            elif name.endswith("_count"):
                counts[(family, base)] = number
        sampled.add(family)
        samples.append((name, labels, number))
    for key, found in buckets.items():
        bounds = [bound for bound, _ in found]
        assert bounds == sorted(bounds) and bounds[-1] == math.inf, f"{key}: buckets out of order"
        cumulative = [count for _, count in found]
        assert cumulative == sorted(cumulative), f"{key}: buckets not cumulative"
        assert cumulative[-1] == counts[key], f"{key}: the +Inf bucket is not the count"
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return sum(
        number
        for sample, found, number in samples
        if sample == name and all(found.get(key) == wanted for key, wanted in labels.items())
    )


def scrape(client: httpx.Client) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse_metrics(response.text)
