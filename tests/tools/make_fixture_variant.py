#!/usr/bin/env python3
"""Builds a second fixture set of the same kinds that differs from the shipped one, to check that the tests read
everything from the manifests (run the suite with LDM_FIXTURES=<out>). Every expected value stays an official one:
folders are renamed and nested, cases renamed, reordered and some dropped, tensors renamed, and a few cases cut to
their first samples along the batch axis (those calls treat each sample independently, so the official outputs of
the kept samples are the official outputs of the smaller call). No value is computed here.

usage: make_fixture_variant.py SOURCE_FIXTURES OUT_DIR     (python3 only)
"""
import json, os, shutil, struct, sys

# folder -> new path below OUT_DIR (folders not listed are left out: a subset)
RENAME = {
    "dit_forward": "dit/tiny-dit-b",
    "dit_functions": "functions/dit-embeddings",
    "gaussian_diffusion": "diffusion/dit-diffusion",
    "autoencoder_kl": "autoencoders/kl-f2",
    "frechet_distance": "metrics/fid-distance",
    "unet_class": "unet/unet-with-classes",
    "inception_fid": "metrics/inception",
}
DROP_CASES = {"frechet_distance": {"gaussians"}, "gaussian_diffusion": {"schedule_full"}, "dit_forward": {"unpatchify"}}
# (kind, op) -> keep the first N samples of every tensor of the case
CUT_BATCH = {("dit", "forward"): 2, ("autoencoder_kl", "encode"): 1, ("autoencoder_kl", "decode"): 1}


def read_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", None)
    body = raw[8 + n:]
    # name -> (dtype, shape, row-major bytes)
    tensors = {k: (v["dtype"], v["shape"], body[v["data_offsets"][0]:v["data_offsets"][1]]) for k, v in header.items()}
    return tensors, meta


def first_samples(tensor, n):
    """The first n entries along axis 0 of a row-major tensor."""
    dtype, shape, b = tensor
    return dtype, [n] + shape[1:], b[:len(b) // shape[0] * n]


def write_safetensors(path, tensors, meta):
    header, chunks, offset = {}, [], 0
    if meta is not None:
        header["__metadata__"] = meta
    for name, (dtype, shape, b) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(b)]}
        chunks.append(b)
        offset += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(chunks))


def tensor_names(case):
    return [t for field in ("inputs", "outputs", "debug_outputs") for t in (case.get(field) or {}).values()]


def main(src, out):
    for folder, new in RENAME.items():
        if not os.path.isdir(os.path.join(src, folder)):
            continue
        sdir, odir = os.path.join(src, folder), os.path.join(out, new)
        os.makedirs(odir, exist_ok=True)
        m = json.load(open(os.path.join(sdir, "manifest.json")))
        data_file = m.get("data", "data.safetensors")
        tensors, meta = read_safetensors(os.path.join(sdir, data_file))
        for f in os.listdir(sdir):  # weights and anything else: unchanged
            if f not in ("manifest.json", data_file):
                shutil.copyfile(os.path.join(sdir, f), os.path.join(odir, f))

        cases = [c for c in m["cases"] if c["name"] not in DROP_CASES.get(folder, set())][::-1]
        for c in cases:
            n = CUT_BATCH.get((m["kind"], c["op"]))
            if n:
                batch = {tensors[t][1][0] for t in tensor_names(c)}
                assert len(batch) == 1 and n < min(batch), (folder, c["name"], batch)
                for t in tensor_names(c):
                    tensors[t] = first_samples(tensors[t], n)
                    m["tensors"][t]["shape"] = tensors[t][1]
                c["notes"] = (c.get("notes", "") + f" [variant: first {n} samples of the official call]").strip()
            c["name"] = "variant_" + c["name"]
            for field in ("inputs", "outputs", "debug_outputs"):
                if field in c:
                    c[field] = {k: "v/" + t for k, t in c[field].items()}
        used = {t for c in cases for t in tensor_names(c)}
        m["cases"] = cases
        m["name"] = os.path.basename(new)
        m["tensors"] = {"v/" + t: v for t, v in m["tensors"].items() if "v/" + t in used}
        write_safetensors(os.path.join(odir, data_file), {"v/" + t: v for t, v in tensors.items() if "v/" + t in used}, meta)
        json.dump(m, open(os.path.join(odir, "manifest.json"), "w"), indent=1)
        print(f"{folder} -> {new}: {len(cases)} cases")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
