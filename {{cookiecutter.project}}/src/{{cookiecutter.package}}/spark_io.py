"""Where `score --engine spark` reads and writes: local paths, or object storage through fsspec.

A path with a scheme (`s3://bucket/key`) is read and written with fsspec (s3fs, the same
client DVC's S3 remote uses; credentials and `AWS_ENDPOINT_URL` from the environment).
On a local session (`local[*]`) such data is staged: copied to a local directory for Spark,
and the output copied up after Spark wrote it. The PyPI PySpark has no S3 connector
(`s3a://` needs the hadoop-aws and AWS SDK jars, which come from Maven, not from PyPI);
a managed cluster has one, and there (`SPARK_MASTER` set) Spark reads and writes the URLs
itself (`s3://` handed over as `s3a://`), so the data never passes through the driver.

A local output directory is replaced atomically (written beside it, then renamed over it);
object storage has no rename, so there the output is uploaded only after every row was
checked and scored, and `<out>.json` is written last: it names the run that completed.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .data import file_sha256
from .errors import DataError, ServiceError


def is_remote(location: str) -> bool:
    """A URL with a scheme other than file:// (s3://, gs://, abfs://)."""
    return "://" in location and not location.startswith("file://")


def for_spark(location: str) -> str:
    """The URL as Hadoop names it: `s3://` is `s3a://` to the S3A connector."""
    return "s3a://" + location[len("s3://") :] if location.startswith("s3://") else location


def _filesystem(location: str) -> tuple[Any, str]:
    try:
        import fsspec

        fs, path = fsspec.core.url_to_fs(location)
    except (ImportError, ValueError) as error:
        raise ServiceError(f"{location}: no filesystem for this URL ({error})") from None
    return fs, str(path)


def stage_in(location: str, directory: Path) -> Path:
    """A local copy of a remote file or directory under `directory` (DataError if absent)."""
    fs, path = _filesystem(location)
    try:
        if not fs.exists(path):
            raise DataError(f"{location}: file not found")
        local = directory / Path(path.rstrip("/")).name
        if fs.isdir(path):
            fs.get(path.rstrip("/") + "/", str(local) + "/", recursive=True)
        else:
            fs.get(path, str(local))
    except OSError as error:
        raise ServiceError(f"{location}: cannot read ({error})") from None
    return local


def _is_data(relative: str) -> bool:
    return not any(part.startswith(("_", ".")) for part in relative.split("/"))


def remote_table(location: str, directory: Path) -> tuple[Path, str]:
    """A remote table's first data file staged (for the structure check) and a fingerprint
    of every data file's name, size and ETag: the data itself stays where it is."""
    fs, path = _filesystem(location)
    try:
        infos = fs.find(path, detail=True) if fs.isdir(path) else {path: fs.info(path)}
    except OSError as error:
        raise ServiceError(f"{location}: cannot list ({error})") from None
    root = path.rstrip("/")
    files = sorted(k for k in infos if _is_data(k[len(root) :].lstrip("/")) or k == path)
    if not files:
        raise DataError(f"{location}: file not found, or no data files under it")
    digest = hashlib.sha256()
    for key in files:
        info = infos[key]
        tag = info.get("ETag") or info.get("etag") or info.get("md5Hash") or ""
        digest.update(f"{key[len(root) :]}\t{info.get('size')}\t{tag}\n".encode())
    first = directory / Path(files[0]).name
    fs.get(files[0], str(first))
    return first, digest.hexdigest()


def hadoop_replace(spark: Any, written: str, location: str) -> None:
    """On a cluster: move Spark's output at `written` over `location` (Hadoop's rename)."""
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    source, target = jvm.org.apache.hadoop.fs.Path(written), jvm.org.apache.hadoop.fs.Path(location)
    fs = target.getFileSystem(conf)
    if fs.exists(target):
        fs.delete(target, True)
    if not fs.rename(source, target):
        raise ServiceError(f"{location}: could not move the finished output from {written}")


def data_files(path: Path) -> list[Path]:
    """The files of a table: the file itself, or a directory's data files (not _ or . ones)."""
    if path.is_file():
        return [path]
    return sorted(
        p for p in path.rglob("*") if p.is_file() and _is_data(p.relative_to(path).as_posix())
    )


def fingerprint(path: Path) -> str:
    """The sha256 of a file; for a directory, of each data file's relative name and sha256."""
    if path.is_file():
        return file_sha256(path)
    digest = hashlib.sha256()
    for file in data_files(path):
        digest.update(f"{file.relative_to(path).as_posix()}\t{file_sha256(file)}\n".encode())
    return digest.hexdigest()


@contextmanager
def new_directory(out: Path) -> Iterator[Path]:
    """A fresh path beside `out` for Spark to write; renamed over `out` if the block succeeds.

    The previous output is moved aside, not deleted, until the new one is in place.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.{secrets.token_hex(6)}.tmp"
    try:
        yield tmp
        old = out.parent / f".{out.name}.{secrets.token_hex(6)}.old"
        if out.exists():
            os.replace(out, old)
        os.replace(tmp, out)
        if old.is_dir():
            shutil.rmtree(old)
        elif old.exists():
            old.unlink()
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def publish(local: Path, location: str) -> None:
    """Upload a finished output directory to `location`, replacing what was there."""
    fs, path = _filesystem(location)
    try:
        if fs.exists(path):
            fs.rm(path, recursive=True)
        fs.put(str(local) + "/", path.rstrip("/") + "/", recursive=True)
    except OSError as error:
        raise ServiceError(f"{location}: cannot write ({error})") from None


def write_text(location: str, text: str) -> None:
    """Write a small text file (the run's sidecar) at a local path or URL."""
    if not is_remote(location):
        from .artifacts import atomic_path

        with atomic_path(location) as tmp:
            tmp.write_text(text, encoding="utf-8")
        return
    fs, path = _filesystem(location)
    try:
        with fs.open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as error:
        raise ServiceError(f"{location}: cannot write ({error})") from None
