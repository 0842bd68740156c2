"""The downloader for real: yt-dlp against a local HTTP server on 127.0.0.1, ffmpeg cuts, resume, failures."""
from __future__ import annotations

import csv

import pytest

from action_recognition import download
from action_recognition.data import read_kinetics_csv
from action_recognition.synthetic import make_source_videos, serve_videos, write_kinetics_csv
from core.io import video_info


def _rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """5 served videos (4 s, 160x120, 10 fps), 2 of them failing: 1 gone (404), 1 served as junk bytes."""
    folder = tmp_path_factory.mktemp("served")
    rows = make_source_videos(folder, per_class=2, actions=("ball_left_to_right", "square_bouncing"), seconds=4.0)
    rows[2]["youtube_id"] = "junk0001"
    (folder / "junk0001.mp4").write_bytes(b"\x00" * 2048)
    rows.append({"label": "square_bouncing", "youtube_id": "late0001", "time_start": 30, "time_end": 40, "split": "train"})
    (folder / "late0001.mp4").write_bytes((folder / f"{rows[0]['youtube_id']}.mp4").read_bytes())
    csv_path = write_kinetics_csv(folder / "list.csv", rows)
    return folder, csv_path, rows


def test_download_cut_retry_failures_and_resume(source, tmp_path):
    folder, csv_path, rows = source
    flaky, gone = rows[0]["youtube_id"], rows[1]["youtube_id"]
    out = tmp_path / "clips"
    with serve_videos(folder, gone=[gone], flaky={flaky: 2}) as (url, requests):
        summary = download.main([str(csv_path), "-o", str(out), "--url-template", url, "--backoff", "0.05",
                                 "--retries", "3", "--short-side", "96", "--fps", "8", "--workers", "2", "--no-progress-bar"])
        assert summary["downloaded"] == 2 and summary["failed"] == 3
        assert requests[flaky] >= 3  # two 503 answers, then success: retried with back-off
        failures = {r["youtube_id"]: r for r in _rows(out / "failures.csv")}
        assert failures[gone]["reason"] == "unavailable" and "404" in failures[gone]["detail"]
        assert failures["junk0001"]["reason"] == "cut failed"
        assert failures["late0001"]["reason"] == "window outside video"
        manifest = _rows(out / "manifest.csv")
        assert sorted(r["youtube_id"] for r in manifest) == sorted([flaky, rows[3]["youtube_id"]])
        clip = out / manifest[0]["path"]
        info = video_info(clip)
        assert min(info.width, info.height) == 96 and abs(info.fps - 8) < 0.5
        assert abs(info.duration_seconds - 3.0) < 0.3          # cut to [0.5, 3.5] of a 4 s video
        assert not (out / "raw").exists() or not any((out / "raw").iterdir())  # full downloads removed

        before = dict(requests)
        again = download.main([str(csv_path), "-o", str(out), "--url-template", url, "--no-progress-bar"])
        assert again["downloaded"] == 0 and again["skipped_existing"] == 2 and again["failed"] == 3
        # done clips and permanent failures are not asked for again; only the cut failure is retried
        assert requests[flaky] == before[flaky] and requests[gone] == before[gone]
        assert requests["junk0001"] > before["junk0001"]
        assert len(_rows(out / "manifest.csv")) == 2


def test_retries_give_up_after_the_limit(source, tmp_path):
    folder, _, rows = source
    csv_path = write_kinetics_csv(tmp_path / "one.csv", rows[:1])
    with serve_videos(folder, flaky={rows[0]["youtube_id"]: 99}) as (url, requests):
        summary = download.main([str(csv_path), "-o", str(tmp_path / "o"), "--url-template", url,
                                 "--retries", "2", "--backoff", "0.01", "--no-progress-bar"])
    failure = _rows(tmp_path / "o" / "failures.csv")[0]
    assert summary["failed"] == 1 and failure["reason"] == "download failed" and failure["attempts"] == "3"
    assert requests[rows[0]["youtube_id"]] == 3


def test_twenty_percent_failing_urls_are_all_logged(tmp_path):
    folder = tmp_path / "served"
    rows = make_source_videos(folder, per_class=5, actions=("ball_left_to_right",), seconds=2.0)
    for row in rows:
        row["time_end"] = 1.5
    gone = [r["youtube_id"] for r in rows[::5]]                  # 1 in 5
    csv_path = write_kinetics_csv(tmp_path / "list.csv", rows)
    with serve_videos(folder, gone=gone) as (url, _):
        summary = download.main([str(csv_path), "-o", str(tmp_path / "o"), "--url-template", url,
                                 "--short-side", "64", "--no-progress-bar"])
    assert summary["downloaded"] == 4 and summary["failed"] == 1
    assert [r["youtube_id"] for r in _rows(tmp_path / "o" / "failures.csv")] == gone
    assert len(read_kinetics_csv(csv_path)) == 5


@pytest.mark.parametrize("message, reason", [
    ("[youtube] abc: Private video. Sign in if you've been granted access", "private"),
    ("[youtube] abc: The uploader has not made this video available in your country", "geo-blocked"),
    ("[youtube] abc: Video unavailable. This video has been removed by the uploader", "unavailable"),
    ("Unable to download webpage: HTTP Error 503: Service Unavailable", "transient"),
    ("something new and strange", None),
])
def test_error_messages_map_to_reasons(message, reason):
    assert download.classify_error(message) == reason
