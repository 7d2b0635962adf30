"""Corpus readers: every record becomes an item or a bad record naming line and field;
file-level problems raise InputFileError before anything is sent."""

from __future__ import annotations

import csv
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from mm_embed.bulk import BadRecord, BulkItem, FieldNames, InputFileError, RejectCode, open_input
from mm_embed.bulk.items import coerce_record


def _png(path: Path) -> Path:
    Image.new("RGB", (16, 16), "red").save(path)
    return path


def _jsonl(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_jsonl_items_in_order_with_line_numbers(tmp_path: Path) -> None:
    _png(tmp_path / "cat.png")
    path = _jsonl(
        tmp_path / "c.jsonl",
        [
            b'{"id": "a", "text": "hello"}',
            b"",
            b'{"id": 7, "image": "cat.png", "boxes": [[0, 0, 8, 8]]}',
            b'{"id": "c", "text": "t", "image": "cat.png", "extra": 1}',
        ],
    )
    records = list(open_input(path))
    assert records == [
        BulkItem("a", "hello"),
        BulkItem("7", image=str(tmp_path / "cat.png"), boxes=[[0.0, 0.0, 8.0, 8.0]]),
        BulkItem("c", "t", str(tmp_path / "cat.png")),
    ]
    assert [r.location for r in records] == [f"{path}:1", f"{path}:3", f"{path}:4"]


@pytest.mark.parametrize(
    ("line", "field", "needle"),
    [
        (b'{"id": "a", "text": "x"', None, "broken JSON at column"),
        (b"[1, 2]", None, "must be an object"),
        (b'{"text": "x", "id": null}', "id", "missing 'id'"),
        (b'{"id": "  ", "text": "x"}', "id", "'id' is empty"),
        (b'{"id": true, "text": "x"}', "id", "string or an integer"),
        (b'{"id": "a", "text": 3}', "text", "'text' must be a string"),
        (b'{"id": "a"}', "text", "needs 'text' and/or 'image'"),
        (b'{"id": "a", "text": "x", "boxes": [[0, 0, 1, 1]]}', "boxes", "needs an 'image'"),
        (b'{"id": "a", "image": "x.png", "boxes": "[[0, 0"}', "boxes", "not valid JSON"),
        (b'{"id": "a", "image": "x.png", "boxes": [[0, 0, 1]]}', "boxes", "boxes[0] must be"),
    ],
)
def test_jsonl_bad_lines_name_line_and_field(
    tmp_path: Path, line: bytes, field: str | None, needle: str
) -> None:
    _png(tmp_path / "x.png")
    path = _jsonl(tmp_path / "c.jsonl", [b'{"id": "ok", "text": "fine"}', line])
    first, bad = list(open_input(path))
    assert isinstance(first, BulkItem)
    assert isinstance(bad, BadRecord), bad
    assert bad.line == 2 and bad.location == f"{path}:2"
    assert bad.field == field
    assert needle in bad.message
    assert bad.code == RejectCode.BAD_RECORD


def test_missing_image_is_a_bad_record_with_its_own_code(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "c.jsonl", [b'{"id": "a", "image": "nope/missing.png"}'])
    (bad,) = list(open_input(path))
    assert isinstance(bad, BadRecord)
    assert bad.code == RejectCode.MISSING_IMAGE and bad.field == "image" and bad.id == "a"
    assert "missing.png" in bad.message and "does not exist" in bad.message


def test_urls_are_not_checked_on_disk(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "c.jsonl", [b'{"id": "a", "image": "https://example.com/a.png"}'])
    assert list(open_input(path)) == [BulkItem("a", image="https://example.com/a.png")]


def test_wrong_keys_on_the_first_record_are_a_file_error(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "c.jsonl", [b"", b'{"doc_id": "a", "body": "x"}'])
    with pytest.raises(InputFileError) as info:
        list(open_input(path))
    assert info.value.line == 2 and info.value.field == "id"
    assert "'doc_id', 'body'" in str(info.value) and "--id-field" in str(info.value)


def test_field_names_can_be_mapped(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "c.jsonl", [b'{"doc_id": "a", "body": "x"}'])
    records = list(open_input(path, fields=FieldNames(id="doc_id", text="body")))
    assert records == [BulkItem("a", "x")]


def test_csv_reader(tmp_path: Path) -> None:
    _png(tmp_path / "p.png")
    path = tmp_path / "c.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "image", "boxes"])
        writer.writerow(["a", "multi\nline text", "", ""])
        writer.writerow(["b", "", "p.png", "[[1, 1, 4, 4]]"])
        writer.writerow(["c", "x", "", "", "surplus"])
        writer.writerow(["", "no id", "", ""])
    records = list(open_input(path))
    assert records[0] == BulkItem("a", "multi\nline text") and records[0].line == 2
    assert records[1] == BulkItem("b", image=str(tmp_path / "p.png"), boxes=[[1.0, 1.0, 4.0, 4.0]])
    assert records[1].line == 4  # the first record spans lines 2-3
    assert isinstance(records[2], BadRecord) and "5 fields, the header has 4" in records[2].message
    assert isinstance(records[3], BadRecord) and records[3].field == "id" and records[3].line == 6


def test_tsv_and_wrong_csv_header(tmp_path: Path) -> None:
    tsv = tmp_path / "c.tsv"
    tsv.write_text("id\ttext\n1\thello\n")
    assert list(open_input(tsv)) == [BulkItem("1", "hello")]
    bad = tmp_path / "c.csv"
    bad.write_text("key,content\n1,hello\n")
    with pytest.raises(InputFileError) as info:
        list(open_input(bad))
    assert info.value.line == 1 and "'key', 'content'" in str(info.value)


def test_csv_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes(b"id,text\n1,ok\n2,\xff\xfe bad\n3,fine\n")
    ok, bad, fine = list(open_input(path))
    assert ok == BulkItem("1", "ok") and fine == BulkItem("3", "fine")
    assert isinstance(bad, BadRecord) and bad.line == 3 and bad.field == "text"
    assert "not UTF-8" in bad.message
    (tmp_path / "h.csv").write_bytes(b"id,t\xffext\n1,ok\n")
    with pytest.raises(InputFileError, match="header is not UTF-8"):
        list(open_input(tmp_path / "h.csv"))


def test_parquet_reader(tmp_path: Path) -> None:
    path = tmp_path / "c.parquet"
    table = pa.table(
        {
            "id": pa.array([1, 2, 3], pa.int64()),
            "text": ["a", None, "c"],
            "other": [1.0, 2.0, 3.0],
        }
    )
    pq.write_table(table, path)
    source = open_input(path)
    assert source.estimated_total == 3
    records = list(source)
    assert records[0] == BulkItem("1", "a") and records[2] == BulkItem("3", "c")
    assert isinstance(records[1], BadRecord) and records[1].location == f"{path}:2"
    pq.write_table(pa.table({"key": ["1"], "text": ["a"]}), tmp_path / "bad.parquet")
    with pytest.raises(InputFileError, match="no 'id' columns"):
        list(open_input(tmp_path / "bad.parquet"))


def test_parquet_boxes_as_nested_lists(tmp_path: Path) -> None:
    _png(tmp_path / "p.png")
    path = tmp_path / "c.parquet"
    pq.write_table(
        pa.table({"id": ["a"], "image": ["p.png"], "boxes": [[[0.0, 0.0, 2.0, 2.0]]]}), path
    )
    assert list(open_input(path)) == [
        BulkItem("a", image=str(tmp_path / "p.png"), boxes=[[0.0, 0.0, 2.0, 2.0]])
    ]


def test_directory_of_images(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    _png(tmp_path / "b" / "2.png")
    _png(tmp_path / "1.jpg")
    (tmp_path / "notes.txt").write_text("skip me")
    source = open_input(tmp_path)
    assert source.format == "images" and source.estimated_total == 2
    records = list(source)
    assert [r.id for r in records] == ["1.jpg", "b/2.png"]
    assert records[1] == BulkItem("b/2.png", image=str(tmp_path / "b" / "2.png"))


def test_file_level_errors(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="does not exist"):
        open_input(tmp_path / "missing.jsonl")
    (tmp_path / "c.txt").write_text("x")
    with pytest.raises(InputFileError, match="cannot tell the format"):
        open_input(tmp_path / "c.txt")
    with pytest.raises(InputFileError, match="needs a directory"):
        open_input(tmp_path / "c.txt", format="images")
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    with pytest.raises(InputFileError, match="not a readable Parquet"):
        open_input(tmp_path / "broken.parquet")


def test_estimated_total_counts_lines(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_bytes(b"".join(orjson.dumps({"id": i, "text": "x"}) + b"\n" for i in range(57)))
    assert open_input(path).estimated_total == 57
    assert open_input(path, count=False).estimated_total is None


def test_coerce_python_values() -> None:
    assert coerce_record("hello", index=4) == BulkItem("4", "hello")
    assert coerce_record("hello", index=4).location == "item 4"  # type: ignore[union-attr]
    item = coerce_record(BulkItem("x", "t"), index=0)
    assert item == BulkItem("x", "t")
    bad = coerce_record(3.5, index=2)
    assert isinstance(bad, BadRecord) and bad.location == "item 2"
    assert isinstance(coerce_record(BulkItem("", "t"), index=0), BadRecord)
