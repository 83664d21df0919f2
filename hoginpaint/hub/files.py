"""Files of a repository — a local folder or a Hugging Face Hub model repository — and every failure worded.

A *repository* is either a local folder or a Hub model repository id (`"org/name"`); the same functions serve both:
`resolve_repo_file` (a local path, downloading to the HF cache from the Hub), `pinned_revision` (the commit a cached
file came from), `read_json`, and `push_to_hub` (a folder as one commit, transient failures retried).

Errors: every failure to load or push is a `HubError`, a `ValueError` subclass (the project's "bad input" type, so
the CLI and the app report it like any other input error). Its message names the repository (and revision), says
what went wrong (offline, not found, gated, timed out, access denied, not JSON) and what to try. `hoginpaint.hub`
builds networks and models on these.
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import httpx2
from huggingface_hub import HfApi, constants, hf_hub_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HFValidationError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import validate_repo_id

# HTTP statuses worth retrying a push on: rate limit and server-side failures.
RETRY_STATUSES = (429, 500, 502, 503, 504)
_COMMIT_HASH = re.compile(r"[0-9a-f]{40}")  # a snapshot folder's name in the HF cache


class HubError(ValueError):
    """Loading from or pushing to a repository (local folder or Hub id) failed; the message says what to try."""


class MissingFileError(HubError):
    """The repository was reached but does not hold the requested file."""


def is_local(repo_id_or_path: str | Path) -> bool:
    """True when `repo_id_or_path` is an existing local folder (which wins over a Hub id of the same spelling)."""
    return Path(repo_id_or_path).is_dir()


def describe(repo_id_or_path: str | Path, revision: str | None = None) -> str:
    """How messages name a repository: `folder 'x'` or `Hub repository 'org/name' (revision r)`."""
    if is_local(repo_id_or_path):
        return f"folder '{repo_id_or_path}'"
    at = f" (revision {revision})" if revision else ""
    return f"Hub repository '{repo_id_or_path}'{at}"


def resolve_repo_file(
    repo_id_or_path: str | Path,
    filename: str,
    *,
    subfolder: str | None = None,
    revision: str | None = None,
    token: str | bool | None = None,
    cache_dir: str | Path | None = None,
    local_files_only: bool = False,
) -> Path:
    """Local path of `subfolder/filename` in a folder, or in a Hub repository (downloaded to the HF cache).

    Raises `MissingFileError` when the repository holds no such file, `HubError` for every other failure.
    """
    in_repo = f"{subfolder}/{filename}" if subfolder else filename
    if is_local(repo_id_or_path):
        path = Path(repo_id_or_path) / in_repo
        if not path.is_file():
            raise MissingFileError(f"{describe(repo_id_or_path)} has no {in_repo}")
        return path
    repo_id = _check_repo_id(repo_id_or_path)
    try:
        return Path(hf_hub_download(repo_id, filename, subfolder=subfolder, revision=revision, token=token,
                                    cache_dir=cache_dir, local_files_only=local_files_only))
    except Exception as error:  # noqa: BLE001 — every Hub failure becomes a HubError, the unknown ones re-raised
        raise _hub_error(error, repo_id, in_repo, revision, local_files_only) from error


def pinned_revision(path: Path, revision: str | None) -> str | None:
    """The commit a file resolved from the HF cache belongs to (`.../snapshots/<commit>/...`), else `revision`.

    Resolving the other files of a repository at that commit keeps them consistent if the branch moves meanwhile.
    """
    parts = Path(path).parts
    if "snapshots" in parts:
        index = len(parts) - 1 - parts[::-1].index("snapshots")
        if index + 1 < len(parts) and _COMMIT_HASH.fullmatch(parts[index + 1]):
            return parts[index + 1]
    return revision


def read_json(repo_id_or_path: str | Path, filename: str, **resolve_kwargs: Any) -> dict[str, Any]:
    """Resolve and parse a JSON object file of a repository (`resolve_kwargs` as in `resolve_repo_file`)."""
    path = resolve_repo_file(repo_id_or_path, filename, **resolve_kwargs)
    return parse_json_object(path, filename, describe(repo_id_or_path), "re-save it")


def parse_json_object(path: Path, name: str, source: str, fix: str) -> dict[str, Any]:
    """The JSON object in the file `path`; else a `HubError` naming the file (`name` of `source`) and ending in `fix`,
    what to do about it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise HubError(f"{name} of {source} is not valid JSON ({error}); {fix}") from None
    if not isinstance(data, dict):
        raise HubError(f"{name} of {source} must hold a JSON object, got {type(data).__name__}; {fix}")
    return data


def push_to_hub(
    folder: str | Path,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool = False,
    commit_message: str = "Upload with hoginpaint",
    revision: str | None = None,
    retries: int = 3,
    backoff_s: float = 2.0,
) -> str:
    """Upload every file of `folder` to the Hub model repository `repo_id` (created if missing); returns the commit URL.

    `revision` names a branch (created if missing). Rate limits, server errors, connection errors and timeouts are
    retried `retries` times with exponential backoff (`backoff_s`, 2·`backoff_s`, ...); other failures raise a
    `HubError` at once. The folder is only read.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise HubError(f"cannot push {folder}: it is not a folder")
    repo_id = _check_repo_id(repo_id)
    if constants.is_offline_mode():
        raise HubError(f"cannot push to Hub repository '{repo_id}': HF_HUB_OFFLINE=1 is set; unset it and retry")
    api = HfApi(token=token)
    for attempt in range(retries + 1):
        try:
            api.create_repo(repo_id, private=private, exist_ok=True)
            if revision is not None:
                api.create_branch(repo_id, branch=revision, exist_ok=True)
            commit = api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message=commit_message,
                                       revision=revision)
            return str(getattr(commit, "commit_url", commit))
        except Exception as error:  # noqa: BLE001 — sorted into retryable and not below
            if attempt < retries and _is_transient(error):
                time.sleep(backoff_s * 2**attempt)
                continue
            tries = f" after {attempt + 1} attempts" if attempt else ""
            raise HubError(f"could not push {folder} to Hub repository '{repo_id}'{tries}: "
                           f"{_push_advice(error)} ({type(error).__name__}: {error})") from error
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------------------------------------------------------
# Helpers


def _check_repo_id(repo_id_or_path: str | Path) -> str:
    text = str(repo_id_or_path)
    if Path(text).exists():
        raise HubError(f"'{text}' is a file, not a folder or a Hub repository id; pass the folder that holds it")
    try:
        validate_repo_id(text)
    except HFValidationError:
        raise HubError(f"'{text}' is neither an existing folder nor a valid Hub repository id ('org/name'); check "
                       "the path") from None
    return text


def _hub_error(error: Exception, repo_id: str, in_repo: str, revision: str | None,
               local_files_only: bool) -> Exception:
    """Word a huggingface_hub / network failure for the user; errors it does not know are returned unchanged."""
    source = describe(repo_id, revision)
    local_hint = " (no local folder of that name exists either)" if "/" in repo_id else ""
    if isinstance(error, GatedRepoError):
        return HubError(f"{source} is gated: accept its conditions at https://huggingface.co/{repo_id}, then log in "
                        "(`hf auth login`) or pass token=")
    if isinstance(error, RepositoryNotFoundError):
        return HubError(f"{source} was not found on the Hub{local_hint}: check the id, and if it is private log in "
                        "(`hf auth login`) or pass token=")
    if isinstance(error, RevisionNotFoundError):
        return HubError(f"{source} has no revision {revision!r}: pass an existing branch, tag or commit")
    if isinstance(error, EntryNotFoundError) and not isinstance(error, LocalEntryNotFoundError):
        return MissingFileError(f"{source} has no {in_repo}")
    if isinstance(error, LocalEntryNotFoundError):
        if local_files_only:
            return HubError(f"{source}: {in_repo} is not in the local Hugging Face cache and local_files_only=True"
                            f"; download it once with `hf download {repo_id}` or pass a local folder")
        if constants.is_offline_mode() or _caused_by(error, OfflineModeIsEnabled):
            return HubError(f"{source}: {in_repo} is not in the local Hugging Face cache and the Hub is offline "
                            f"(HF_HUB_OFFLINE=1); download it once where the Hub is reachable "
                            f"(`hf download {repo_id}`), or pass a local folder")
        if _caused_by(error, TimeoutError, httpx2.TimeoutException):
            return HubError(f"{source}: timed out reaching the Hub for {in_repo}, and no cached copy; "
                            "retry, or raise HF_HUB_ETAG_TIMEOUT / HF_HUB_DOWNLOAD_TIMEOUT")
        answer = _cause(error, HfHubHTTPError)  # the Hub answered (403, 5xx): huggingface_hub wraps it like an outage
        if answer is not None:
            return _hub_error(answer, repo_id, in_repo, revision, local_files_only)
        return HubError(f"{source}: could not reach the Hub for {in_repo}, and no cached copy; check "
                        "your connection (and HF_ENDPOINT), or pass a local folder")
    if isinstance(error, HfHubHTTPError):
        status = error.response.status_code if error.response is not None else None
        if status in (401, 403):
            return HubError(f"{source}: access denied (HTTP {status}); log in (`hf auth login`) or pass a token "
                            "with read access")
        return HubError(f"{source}: the Hub answered HTTP {status} for {in_repo}; retry later")
    if _caused_by(error, TimeoutError, httpx2.TimeoutException):
        return HubError(f"{source}: timed out downloading {in_repo}; retry, or raise HF_HUB_DOWNLOAD_TIMEOUT")
    if _caused_by(error, ConnectionError, httpx2.TransportError):
        return HubError(f"{source}: the connection failed while downloading {in_repo}; check your connection")
    if isinstance(error, HFValidationError):
        return HubError(f"'{repo_id}' is not a valid Hub repository id or revision: {error}")
    return error


def _is_transient(error: Exception) -> bool:
    if isinstance(error, HfHubHTTPError):
        return error.response is not None and error.response.status_code in RETRY_STATUSES
    return _caused_by(error, TimeoutError, ConnectionError, httpx2.TransportError)


def _push_advice(error: Exception) -> str:
    if isinstance(error, HfHubHTTPError) and error.response is not None and error.response.status_code in (401, 403):
        return "no write access; log in with a write token (`hf auth login`) or pass token="
    if _is_transient(error):
        return "the Hub kept failing; the folder is unchanged, retry later"
    return "the Hub refused the upload"


def _caused_by(error: BaseException, *types: type[BaseException]) -> bool:
    """True when `error` or anything in its cause/context chain is an instance of one of `types`."""
    return _cause(error, *types) is not None


def _cause(error: BaseException, *types: type[BaseException]) -> BaseException | None:
    """The first of `error` and its cause/context chain that is an instance of one of `types`, else None."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, types):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None
