"""Where a lake's ledgers are: object names by SEP-54's arithmetic, manifests, sources, and a lake served by a
real web server on loopback (a copy of the test bucket), read by name without listing."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import zstandard
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from stellar_sdk import xdr

from devnet import running_devnet
from devnet.lake import object_key, write_lake
from indexer.lake import LakeDataError, LakeSourceError, read_ledgers
from indexer.lake.layout import Lake, LakeConfig, SingleObject, bucket_region, open_source
from tests.lake_files import BUCKET_OBJECTS, DATALAKE, FEES, TESTBUCKET
from tests.lake_writer import grow
from tests.serving import running_app


@pytest.mark.parametrize(("per_batch", "per_partition", "ledger", "key"), [
    (1, 64000, 997, "FFFFFFFF--0-63999/FFFFFC1A--997.xdr.zst"),
    (1, 64000, 64001, "FFFF05FF--64000-127999/FFFF05FE--64001.xdr.zst"),
    (2, 8, 3, "FFFFFFFF--0-15/FFFFFFFD--2-3.xdr.zst"),  # SEP-54's examples
    (2, 8, 19, "FFFFFFEF--16-31/FFFFFFED--18-19.xdr.zst"),
    (1, 1, 2, "FFFFFFFD--2.xdr.zst"),  # a partition of one batch: no folder
    (64, 1, 130, "FFFFFF7F--128-191.xdr.zst"),
])
def test_the_object_of_a_ledger_is_named_by_sep54(per_batch: int, per_partition: int, ledger: int, key: str) -> None:
    assert LakeConfig("Test SDF Network ; September 2015", per_batch, per_partition).object_key(ledger) == key


def test_the_test_buckets_objects_are_where_the_layout_says() -> None:
    config = LakeConfig.parse((TESTBUCKET / ".config.json").read_bytes(), "testbucket")
    assert config == LakeConfig("Test SDF Network ; September 2015", 1, 64000)
    assert sorted(f"testbucket/{config.object_key(n)}" for n in (997, 998, 999)) == list(BUCKET_OBJECTS)


@pytest.mark.parametrize(("manifest", "message"), [
    (b"{", "not a data lake manifest"),
    (b'{"ledgersPerBatch": 1}', "not a data lake manifest"),
    (b'{"ledgersPerBatch": 1, "batchesPerPartition": 8, "compression": "gzip"}', "only zstd"),
    (b'{"ledgersPerBatch": 0, "batchesPerPartition": 8}', "at least 1"),
])
def test_a_bad_manifest_is_refused_with_the_reason(manifest: bytes, message: str) -> None:
    with pytest.raises(LakeSourceError, match=message):
        LakeConfig.parse(manifest, "x/.config.json")


def test_a_folder_without_a_manifest_is_not_a_lake(tmp_path: Path) -> None:
    with pytest.raises(LakeSourceError, match=r"has no \.config\.json"):
        open_source(str(tmp_path))
    with pytest.raises(LakeSourceError, match="does not exist"):
        open_source(str(tmp_path / "missing"))


def test_local_sources_are_a_lake_root_or_one_file() -> None:
    lake = open_source(str(TESTBUCKET))
    assert isinstance(lake, Lake) and lake.listable
    assert (lake.oldest_ledger(), lake.newest_ledger()) == (997, 999)
    assert isinstance(open_source(str(DATALAKE / FEES)), SingleObject)


@contextlib.contextmanager
def _serving(folder: Path) -> Iterator[tuple[str, list[str]]]:
    """A plain web server for `folder` on loopback; yields its URL and the paths it was asked for."""
    asked: list[str] = []
    files = StaticFiles(directory=folder)

    async def serve(request: Request) -> Response:
        asked.append(request.url.path)
        return await files.get_response(request.path_params["path"], request.scope)

    app = Starlette(routes=[Route("/{path:path}", serve)])
    with running_app(app, lifespan="off") as url:
        yield url, asked


@pytest.fixture
def served_bucket(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    shutil.copytree(TESTBUCKET, tmp_path / "testbucket")
    with _serving(tmp_path) as (url, asked):
        yield f"{url}/testbucket", asked


def test_a_lake_on_a_web_server_reads_only_the_objects_of_the_range(served_bucket: tuple[str, list[str]]) -> None:
    url, asked = served_bucket
    ledgers = list(read_ledgers(url, start=998, end=998))
    assert [(ledger.sequence, ledger.events) for ledger in ledgers] == [(998, ())]
    assert asked == ["/testbucket/.config.json", "/testbucket/FFFFFFFF--0-63999/FFFFFC19--998.xdr.zst"]


def test_a_lake_on_a_web_server_is_read_to_its_first_missing_object(served_bucket: tuple[str, list[str]]) -> None:
    url, _ = served_bucket
    assert [ledger.sequence for ledger in read_ledgers(url, start=997)] == [997, 998, 999]


def test_a_lake_on_a_web_server_needs_a_start(served_bucket: tuple[str, list[str]]) -> None:
    url, _ = served_bucket
    with pytest.raises(LakeSourceError, match="give --start"):
        list(read_ledgers(url))


def test_a_missing_object_within_the_range_is_an_error_naming_it(served_bucket: tuple[str, list[str]]) -> None:
    url, _ = served_bucket
    with pytest.raises(LakeSourceError, match=r"FFFFFC17--1000\.xdr\.zst does not exist: the lake has no ledger 1000"):
        list(read_ledgers(url, start=999, end=1000))
    with pytest.raises(LakeSourceError, match="no ledger 990"):
        list(read_ledgers(url, start=990))


def test_one_object_can_be_read_by_its_url(served_bucket: tuple[str, list[str]]) -> None:
    url, _ = served_bucket
    [ledger] = read_ledgers(f"{url}/FFFFFFFF--0-63999/FFFFFC1A--997.xdr.zst")
    assert ledger.sequence == 997


def test_a_url_without_a_manifest_is_not_a_lake(served_bucket: tuple[str, list[str]]) -> None:
    url, _ = served_bucket
    with pytest.raises(LakeSourceError, match=r"has no \.config\.json"):
        open_source(f"{url}/FFFFFFFF--0-63999")


def test_a_truncated_object_on_the_server_is_an_error_naming_it(tmp_path: Path) -> None:
    shutil.copytree(TESTBUCKET, tmp_path / "lake")
    victim = tmp_path / "lake/FFFFFFFF--0-63999/FFFFFC19--998.xdr.zst"
    victim.write_bytes(victim.read_bytes()[:-40])
    with _serving(tmp_path) as (url, _), pytest.raises(LakeDataError, match=r"FFFFFC19--998\.xdr\.zst.*truncated"):
        list(read_ledgers(f"{url}/lake", start=997, end=999))


def test_a_buckets_region_comes_from_the_header_s3_sends_to_anyone() -> None:
    async def head(request: Request) -> Response:
        return Response(status_code=403, headers={"x-amz-bucket-region": "us-east-2"})

    async def missing(request: Request) -> Response:
        return Response(status_code=404)

    app = Starlette(routes=[Mount("/", routes=[Route("/bucket", head, methods=["HEAD"]),
                                               Route("/nobucket", missing, methods=["HEAD"])])])
    with running_app(app, lifespan="off") as url:
        assert bucket_region("bucket", f"{url}/bucket") == "us-east-2"
        with pytest.raises(LakeSourceError, match="no S3 bucket 'nobucket'"):
            bucket_region("nobucket", f"{url}/nobucket")


def test_an_s3_lake_is_read_anonymously_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """s3:// through obstore's S3 client, pointed at a web server on loopback that serves the bucket's objects
    under /<bucket>/<key> (path-style requests), as S3 does for anonymous GETs."""
    shutil.copytree(TESTBUCKET, tmp_path / "public-bucket" / "lake")
    with _serving(tmp_path) as (url, asked):
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        monkeypatch.setenv("AWS_ALLOW_HTTP", "true")
        ledgers = list(read_ledgers("s3://public-bucket/lake", start=997, end=998))
    assert [ledger.sequence for ledger in ledgers] == [997, 998]
    assert asked[0] == "/public-bucket/lake/.config.json"
    assert sorted(asked[1:]) == ["/public-bucket/lake/FFFFFFFF--0-63999/FFFFFC19--998.xdr.zst",
                                 "/public-bucket/lake/FFFFFFFF--0-63999/FFFFFC1A--997.xdr.zst"]


@pytest.mark.parametrize(("keep", "refusal"), [
    ([0, 0, 2, 3], r"holds ledger 8 where ledger 9 belongs"),  # a ledger twice, its successor lost
    ([0, 1, 2], r"ends at ledger 10, short of its range 8-11"),  # the header agrees, the range does not
])
def test_an_object_lacking_a_ledger_of_its_range_is_corrupt_not_skipped(
    tmp_path: Path, keep: list[int], refusal: str
) -> None:
    with running_devnet(seed=3, traffic_per_ledger=2) as devnet:
        end = write_lake(tmp_path, devnet.chain.passphrase, grow(devnet.chain, 20))
    damaged = tmp_path / object_key(8, 4, 8)
    batch = xdr.LedgerCloseMetaBatch.from_xdr_bytes(zstandard.ZstdDecompressor().decompress(damaged.read_bytes()))
    metas = [batch.ledger_close_metas[i] for i in keep]
    batch = xdr.LedgerCloseMetaBatch(start_sequence=batch.start_sequence,
                                     end_sequence=xdr.Uint32(batch.start_sequence.uint32 + len(metas) - 1),
                                     ledger_close_metas=metas)
    damaged.write_bytes(zstandard.ZstdCompressor(write_checksum=True).compress(batch.to_xdr_bytes()))
    with pytest.raises(LakeDataError, match=refusal):
        list(read_ledgers(str(tmp_path), start=1, end=end))
