"""The Hub: a repository's files (a local folder or a Hub model repository id alike), networks stored as safetensors
components and loaded strictly, the layout of a model made of components, and model cards.

- `hoginpaint.hub.files`: `resolve_repo_file`, `read_json`, `push_to_hub` (transient failures retried); every
  failure a `HubError` that names the repository and says what to try.
- `hoginpaint.hub.loading`: `load_component` (the one loader of networks), `save_component`, `StrictHubMixin`,
  `ComponentModel`.
- `hoginpaint.hub.model_card`: the default card and the training card.
"""
from __future__ import annotations

from hoginpaint.hub.files import (
    RETRY_STATUSES,
    HubError,
    MissingFileError,
    describe,
    is_local,
    parse_json_object,
    pinned_revision,
    push_to_hub,
    read_json,
    resolve_repo_file,
)
from hoginpaint.hub.loading import (
    CONFIG_NAME,
    MODEL_INDEX_NAME,
    PICKLE_SUFFIXES,
    WEIGHTS_NAME,
    ComponentModel,
    StrictHubMixin,
    check_safetensors_file,
    check_state_dict,
    load_component,
    save_component,
)

__all__ = [
    "CONFIG_NAME", "MODEL_INDEX_NAME", "PICKLE_SUFFIXES", "RETRY_STATUSES", "WEIGHTS_NAME", "ComponentModel",
    "HubError", "MissingFileError", "StrictHubMixin", "check_safetensors_file", "check_state_dict", "describe",
    "is_local", "load_component", "parse_json_object", "pinned_revision", "push_to_hub", "read_json",
    "resolve_repo_file", "save_component",
]
