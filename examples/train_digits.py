"""Train a classifier on scikit-learn's 8x8 digits with the full training kit, as one would
in PyTorch: TensorDataset + DataLoader (shuffled by its own generator), AdamW, a linear
warmup followed by cosine decay (SequentialLR), gradient-norm clipping, and a checkpoint
written to a ``.pt`` file after every epoch (PyTorch's format: ``torch.load`` reads it).

Then it shows that resuming works exactly: it "restarts" from the checkpoint written after
epoch 2 -- fresh model, optimizer, scheduler and loader, all restored from the file --
trains the remaining epochs, and checks the parameters are identical to the uninterrupted
run's.

Finally it trains the same model with the whole training step compiled
(``tracegrad.compile`` over zero_grad, forward, backward, clipping and ``opt.step()``: one XLA
program per step; the scheduler steps outside, and its learning rate reaches the program
without a retrace) and checks it ends where the eager run did, to float32 rounding.

    python examples/train_digits.py [--epochs 4] [--checkpoint digits.pt]
"""
import argparse
import os
import sys
import tempfile

import numpy as np

import tracegrad as torch
import tracegrad.nn.functional as F
from tracegrad import nn
from tracegrad.utils.data import DataLoader, TensorDataset

try:
    from sklearn.datasets import load_digits
except ImportError:  # pragma: no cover - the test skips this example without scikit-learn
    sys.exit("train_digits.py needs scikit-learn (pip install scikit-learn) for the digits data")

BATCH, WARMUP_STEPS, LR, CLIP = 64, 20, 3e-3, 1.0


def data():
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    n_train = 1400
    train = TensorDataset(torch.from_numpy(x[:n_train]), torch.from_numpy(y[:n_train]))
    test = (torch.from_numpy(x[n_train:]), torch.from_numpy(y[n_train:]))
    return train, test


def build(train, epochs):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=1e-2)
    gen = torch.Generator().manual_seed(1)
    loader = DataLoader(train, batch_size=BATCH, shuffle=True, generator=gen)
    total = epochs * len(loader)
    sched = torch.optim.lr_scheduler.SequentialLR(opt, [
        torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=WARMUP_STEPS),
        torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total - WARMUP_STEPS)],
        milestones=[WARMUP_STEPS])
    return model, opt, sched, loader, gen


def make_step(model, opt):
    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        opt.step()
        return loss
    return step


def train_epoch(step, model, sched, loader):
    model.train()
    total, n = 0.0, 0
    for x, y in loader:
        loss = step(x, y)
        sched.step()
        total += loss.item() * len(y)
        n += len(y)
    return total / n


def accuracy(model, test):
    model.eval()
    with torch.no_grad():
        pred = model(test[0]).argmax(dim=1)
    return (pred == test[1]).float().mean().item()


def save(path, epoch, model, opt, sched, gen):
    torch.save({"epoch": epoch, "model": model.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(), "loader_rng": gen.get_state()}, path)


def run(epochs, path, start=None, compiled=False):
    """Train to ``epochs``; from scratch, or resumed from the checkpoint at ``start``; the
    step eager or compiled."""
    train, test = data()
    model, opt, sched, loader, gen = build(train, epochs)
    step = make_step(model, opt)
    if compiled:
        step = torch.compile(step)
    first = 0
    if start is not None:
        ck = torch.load(start)  # weights_only=True: the file can hold no code
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        gen.set_state(ck["loader_rng"])
        first = ck["epoch"] + 1
        print(f"resumed from {os.path.basename(start)} after epoch {ck['epoch']}")
    for epoch in range(first, epochs):
        loss = train_epoch(step, model, sched, loader)
        save(path.format(epoch=epoch), epoch, model, opt, sched, gen)
        print(f"epoch {epoch}: loss {loss:.4f}  lr {sched.get_last_lr()[0]:.2e}  "
              f"test accuracy {accuracy(model, test):.3f}")
    return model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--checkpoint", default=None, help="where to write checkpoints "
                    "('{epoch}' is replaced; default: a temporary directory)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.checkpoint or os.path.join(tmp, "digits-{epoch}.pt")
        full = run(args.epochs, path)
        resume_from = max(args.epochs // 2 - 1, 0)
        resumed = run(args.epochs, path.replace("{epoch}", "resumed-{epoch}"),
                      start=path.format(epoch=resume_from))
        same = all(np.array_equal(p.detach().numpy(), q.detach().numpy())
                   for p, q in zip(full.parameters(), resumed.parameters()))
        print("resumed run identical to the uninterrupted one:", same)
        if not same:
            sys.exit(1)
        print("the same training with the whole step compiled:")
        comp = run(args.epochs, path.replace("{epoch}", "compiled-{epoch}"), compiled=True)
        diff = max(float(np.abs(p.detach().numpy() - q.detach().numpy()).max())
                   for p, q in zip(full.parameters(), comp.parameters()))
        print(f"compiled run ends where the eager one did: {diff < 1e-4} (max difference "
              f"{diff:.1e})")
        if diff >= 1e-4:
            sys.exit(1)


if __name__ == "__main__":
    main()
