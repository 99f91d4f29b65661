"""An LRU cache of each image's vision-tower + projector output, bounded in bytes.

Every pruning config of a sweep sees the same images, and pruning happens after the projector, so
the (unpruned, packed) visual features of an image are the same in every trial: with this cache
the vision tower runs once per image per sweep instead of once per trial. Keys hash the image as decoded (its
pixels, mode and size) and the image processor's settings, on the host before the batch is processed
(`image_key`), so a changed image or preprocessing misses and no pixels come back from the device; a caller that
gives none (a model's own generate()) gets keys hashed from the preprocessed pixels (`key`).

When a sweep's images outnumber the cache (a benchmark at full size: VQAv2 has 214,354 questions), each trial's
pass evicts an image before the next trial comes back to it: only an image asked about again soon can hit (VQAv2,
GQA and POPE ask several questions about one image in a row). Holding the whole budget then buys nothing more than
a short window of recent images does, and the churn of a large cache fragments the worker's heap (3.4 GB against
1.6 GB without a cache, BENCHMARKS.md). So a cache told (`expect`) that a sweep's images cannot all fit shrinks to
the last WINDOW_IMAGES images; and a cache that turns over its whole budget without a single hit (no image
repeats: told or not, a worker Ray restarted) stops admitting and lets its entries go, from then on a lookup per
image and no memory.
"""

import hashlib
from collections import OrderedDict

import torch

WINDOW_IMAGES = 256  # kept when a sweep's images cannot all be: repeats of an image this close together still hit


class FeatureCache:
    def __init__(self, max_bytes: int = 1 << 30):
        if max_bytes <= 0:
            raise ValueError(f"max_bytes={max_bytes} must be > 0")
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self.admitting = True  # False once it knows it can only churn (see the module's docstring)
        self._evicted_since_hit = 0
        self._entries: OrderedDict[str, torch.Tensor] = OrderedDict()

    @staticmethod
    def image_key(image, settings: str) -> str:
        """A PIL image's key under image-processor `settings` (processor_settings): made on the host."""
        digest = hashlib.blake2b(image.tobytes(), digest_size=16)
        digest.update(f"{image.mode}{image.size}{settings}".encode())
        return digest.hexdigest()

    @staticmethod
    def key(pixels: torch.Tensor, image_size) -> str:
        # The raw bytes, whatever the dtype (numpy has no bfloat16); the dtype is part of the key.
        raw = pixels.detach().contiguous().view(torch.uint8).cpu().numpy().tobytes()
        digest = hashlib.blake2b(raw, digest_size=16)
        digest.update(f"{pixels.dtype}{[int(v) for v in image_size]}".encode())
        return digest.hexdigest()

    def get(self, key: str) -> torch.Tensor | None:
        features = self._entries.get(key)
        if features is None:
            self.misses += 1
            return None
        self.hits += 1
        self._evicted_since_hit = 0
        self._entries.move_to_end(key)
        return features

    def put(self, key: str, features: torch.Tensor) -> None:
        size = features.numel() * features.element_size()
        if not self.admitting or size > self.max_bytes or key in self._entries:
            return
        self._entries[key] = features
        self.bytes += size
        self._evict()
        if self._evicted_since_hit >= self.max_bytes:  # a whole turnover without a hit: it can only churn
            self.stop()

    def _evict(self) -> None:
        while self.bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            evicted_size = evicted.numel() * evicted.element_size()
            self.bytes -= evicted_size
            self._evicted_since_hit += evicted_size

    def expect(self, images: int, image_bytes: int) -> bool:
        """Told a sweep shows it `images` images of at least `image_bytes` of features each: whether they all stay
        from one trial to the next. If not, it keeps the last WINDOW_IMAGES of them (see the module's docstring)."""
        if images * image_bytes <= self.max_bytes:
            return True
        self.max_bytes = min(self.max_bytes, WINDOW_IMAGES * image_bytes)
        self._evict()
        return False

    def stop(self) -> None:
        """Admit nothing more and let every entry go."""
        self.admitting = False
        self._entries.clear()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def stats(self) -> dict:
        return {"entries": len(self), "bytes": self.bytes, "max_bytes": self.max_bytes,
                "hits": self.hits, "misses": self.misses, "admitting": self.admitting}


def processor_settings(processor) -> str:
    """What of a processor decides an image's pixels: its image processor's settings, as one digest."""
    image_processor = getattr(processor, "image_processor", processor)
    return hashlib.blake2b(image_processor.to_json_string().encode(), digest_size=8).hexdigest()
