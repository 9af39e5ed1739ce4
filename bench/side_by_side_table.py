"""Turns bench/side-by-side.sh's results.jsonl into the Markdown table of docs/performance.md."""
import json, sys

rows = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    rows[r["label"]] = r["result"]


def seconds(label):
    r = rows.get(label)
    if r is None:
        return None
    if "seconds" in r:  # PyTorch
        return r["seconds"]
    part = r.get("train") or r.get("forward")
    return part["seconds"] if part else None


def dtype_of(label):
    r = rows.get(label, {})
    part = r.get("train") or r.get("forward") or {}
    return part.get("dtype")


def cell(label, base):
    s = seconds(label)
    if s is None:
        return ""
    text = f"{s:.2f}"
    if base and label != base and seconds(base):
        text += f" ({s / seconds(base):.2f}×)"
    if label.endswith(" auto") and dtype_of(label):
        text += f" [{dtype_of(label)}]"
    return text


batches = sorted({int(k.split()[2]) for k in rows if k.startswith("pytorch train ")})
print("| measure (seconds, median) | PyTorch float32 | PyTorch bf16 autocast | ours float32 | ours bf16 (mixed precision) | ours auto | ours in-context float32 | ours in-context auto |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for b in batches:
    base = f"pytorch train {b} float32"
    cells = [cell(l, base) for l in (base, f"pytorch train {b} bf16", f"ours train {b} float32", f"ours train {b} bf16",
                                     f"ours train {b} auto", f"ours in-context train {b} float32", f"ours in-context train {b} auto")]
    print(f"| training step, batch {b} | " + " | ".join(cells) + " |")
fwd = sorted({int(k.split()[2]) for k in rows if k.startswith("pytorch forward ")})
for b in fwd:
    base = f"pytorch forward {b} float32"
    cells = [cell(l, base) for l in (base, f"pytorch forward {b} bf16", f"ours forward {b} float32", "", f"ours forward {b} auto", "", "")]
    print(f"| forward pass, batch {b} | " + " | ".join(cells) + " |")
mm = rows.get("ours matmul", {}).get("matmul", {})
py32 = rows.get("pytorch matmul float32", {}).get("gflops")
py16 = rows.get("pytorch matmul bf16", {}).get("gflops")
fmt = lambda v: f"{v:.0f}" if v else ""
print(f"| 2048² matrix product, GFLOP/s | {fmt(py32)} (OpenBLAS) | {fmt(py16)} | {fmt(mm.get('float32'))} (libtorch) | {fmt(mm.get('bf16'))} | | | |")
for label, r in rows.items():
    part = r.get("train") if isinstance(r, dict) else None
    if part and part.get("peak_share") is not None:
        print(f"\n{label}: {part['peak_share'] * 100:.0f} % of the measured {part['dtype']} matrix-product peak", end="")
print()
