"""Train the Fashion-MNIST classifier that ships as the ``fmnist`` feature extractor.

    nice -n 10 .venv/bin/python scripts/train_fmnist_classifier.py [--root DIR] [--seed 0]

Uses the train split only and reports accuracy on the test split, read back through the same
extractor the metrics use. One thread by default: CPU kernels then sum in a fixed order, so the
same seed gives the same weights (more threads are faster but may differ in the last bits),
and, saved under the same file name, the same bytes and sha256 (with the same torch version).
Training sees random flips and shifts of up to 1 px, so the features do not hinge on a sample
being perfectly centered, as GAN samples may not be.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from gan_runner.data import fashion_mnist
from gan_runner.metrics.features import fmnist

DEFAULT_OUT = Path(fmnist.__file__).with_name(fmnist.WEIGHTS_FILE)
SHIFT = 1


def as_input(images) -> Tensor:
    """(N, 28, 28) uint8 array -> the classifier's float input."""
    return fmnist.classifier_input(torch.from_numpy(images).unsqueeze(1))


def augment(x: Tensor, generator: torch.Generator) -> Tensor:
    """Random horizontal flip and a random shift of up to ``SHIFT`` px per image; the area
    shifted in is background (-1), like the black border of the data."""
    n = x.shape[0]
    flip = torch.rand(n, generator=generator) < 0.5
    x = torch.where(flip.view(n, 1, 1, 1), x.flip(3), x)
    padded = F.pad(x, (SHIFT,) * 4, value=-1.0)
    dy, dx = torch.randint(0, 2 * SHIFT + 1, (2, n, 1), generator=generator)
    rows = (dy + torch.arange(fmnist.SIZE)).unsqueeze(2)
    cols = (dx + torch.arange(fmnist.SIZE)).unsqueeze(1)
    return padded[torch.arange(n).view(n, 1, 1), 0, rows, cols].unsqueeze(1)


@torch.no_grad()
def test_accuracy(path: Path, root: str | None) -> float:
    data = path.read_bytes()
    extractor = fmnist.FmnistFeatures(torch.load(path, weights_only=True),
                                      hashlib.sha256(data).hexdigest())
    images, labels = fashion_mnist.load(root, "test")
    images_t = torch.from_numpy(images).unsqueeze(1)
    predictions = torch.cat([extractor(images_t[i:i + 1000])["logits"].argmax(1)
                             for i in range(0, len(images_t), 1000)])
    return (predictions == torch.from_numpy(labels)).float().mean().item()


def train(root: str | None, epochs: int, batch_size: int, lr: float, seed: int
          ) -> fmnist.FashionCNN:
    torch.manual_seed(seed)  # initialization and dropout
    generator = torch.Generator().manual_seed(seed)  # order and augmentation
    images, labels = fashion_mnist.load(root, "train")
    x, y = as_input(images), torch.from_numpy(labels)
    net = fmnist.FashionCNN()
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * (len(x) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    net.train()
    for epoch in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        total = 0.0
        for i in range(len(x) // batch_size):
            batch = order[i * batch_size:(i + 1) * batch_size]
            _, logits = net(augment(x[batch], generator))
            loss = F.cross_entropy(logits, y[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item()
        print(f"epoch {epoch + 1}/{epochs}: train loss {total / (len(x) // batch_size):.4f}",
              flush=True)
    return net.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=None, help="Fashion-MNIST folder (default: Debian's)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    start = time.perf_counter()
    net = train(args.root, args.epochs, args.batch_size, args.lr, args.seed)
    seconds = time.perf_counter() - start
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), args.out)
    print(f"trained in {seconds:.0f} s; saved {args.out} "
          f"({args.out.stat().st_size / 1e6:.2f} MB)")
    print(f"test accuracy {test_accuracy(args.out, args.root):.4f}")
    print(f"sha256 {hashlib.sha256(args.out.read_bytes()).hexdigest()}")


if __name__ == "__main__":
    main()
