"""Throughput of the learned scorers, per stage: end to end (the project's call, from RGB frames
in memory) against the model alone (preprocessed input ready on the device), plus frame-file
decoding (PNG vs JPEG, one thread vs a pool; JPEG on the GPU with torchvision when on CUDA),
and optionally the whole graph's videos/s over N shards.

Runs on any machine with the project's model layer: it imports curation_assets.models and
curation_assets.frames.files only (neither dagster nor duckdb), so on a bare GPU box it needs
torch, opencv, open_clip_torch (+ ftfy, wcwidth), easyocr (+ python-bidi, pyclipper, shapely),
transformers, the source tree and the frames. `--graph N` alone needs the whole project.

    python benchmarks/gpu_benchmark.py --device cpu                # here
    python benchmarks/gpu_benchmark.py --device cuda --frames 1024 # a GPU box
    python benchmarks/gpu_benchmark.py --device cpu --graph 2      # + whole graph, 2 shards

Frames: the first/middle/last frame of each clip in --videos (default ../shared/data/real_videos,
decoded with OpenCV), or every PNG/JPEG in --frames-dir; repeated to --frames. Weights:
CLIP ViT-B-32 and ViT-L-14 are the real architectures with seeded random weights (speed does
not depend on the weights; the real ones are used with --clip-weights real when present), the
aesthetic head is the real one when --aesthetic-head exists, OCR uses EasyOCR's real CRAFT,
VideoBLIP the tiny profile (or a real checkpoint with --videoblip PATH).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_VIDEOS = ROOT.parent / "shared" / "data" / "real_videos"
DEFAULT_HEAD = ROOT.parent / "shared" / "data" / "weights" / "aesthetic_head" / "sac+logos+ava1-l14-linearMSE.pth"


# --------------------------------------------------------------------------- helpers


def sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def rate(fn, n_items: int, device: str, repeat: int) -> float:
    """Items/s: median of `repeat` timed calls after one warm-up call."""
    fn()
    sync(device)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return n_items / statistics.median(times)


def sample_frames(args) -> list[np.ndarray]:
    import cv2

    frames: list[np.ndarray] = []
    if args.frames_dir:
        for path in sorted(Path(args.frames_dir).glob("*")):
            if path.suffix.lower() in (".png", ".jpg", ".jpeg"):
                frames.append(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB))
    else:
        for path in sorted(Path(args.videos).glob("*.mp4")):
            cap = cv2.VideoCapture(str(path))
            n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            wanted = sorted({0, (n - 1 + 1) // 2, n - 1})
            got, i = {}, 0
            while i <= wanted[-1]:
                ok, frame = cap.read()
                if not ok:
                    break
                if i in wanted:
                    got[i] = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                i += 1
            frames += [got[k] for k in wanted if k in got]
    if not frames:
        raise SystemExit(f"no frames found (--videos {args.videos} / --frames-dir {args.frames_dir})")
    return frames


def repeat_to(frames: list[np.ndarray], n: int) -> list[np.ndarray]:
    return [frames[i % len(frames)] for i in range(n)]


def row(results: list, stage: str, e2e: float | None, alone: float | None, unit: str = "frames/s", note: str = ""):
    results.append({"stage": stage, "end_to_end": e2e, "model_alone": alone, "unit": unit, "note": note})
    fmt = lambda v: "-" if v is None else f"{v:,.0f}" if v >= 100 else f"{v:.3g}"  # noqa: E731
    print(f"| {stage} | {fmt(e2e)} | {fmt(alone)} | {unit} | {note} |", flush=True)


# --------------------------------------------------------------------------- stages


def bench_decode(frames, args, results):
    """PNG (as sampled_frames writes them) vs JPEG q95: files -> RGB arrays."""
    import cv2

    from curation_assets.frames.files import decode_threads, read_frames_parallel

    with tempfile.TemporaryDirectory(prefix="gpu_bench_frames_") as tmp:
        paths = {"png": [], "jpg": []}
        for i, rgb in enumerate(frames):
            bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
            for ext, params in (("png", [cv2.IMWRITE_PNG_COMPRESSION, 1]), ("jpg", [cv2.IMWRITE_JPEG_QUALITY, 95])):
                path = f"{tmp}/{i:05d}.{ext}"
                cv2.imwrite(path, bgr, params)
                paths[ext].append(path)
        threads = decode_threads()
        for ext in ("png", "jpg"):
            one = rate(lambda: read_frames_parallel(paths[ext], 1), len(frames), "cpu", args.repeat)
            many = rate(lambda: read_frames_parallel(paths[ext], threads), len(frames), "cpu", args.repeat)
            row(results, f"decode {ext.upper()} (cv2), 1 thread", one, None)
            row(results, f"decode {ext.upper()} (cv2), {threads} threads", many, None)
        if args.device.startswith("cuda"):
            import torch
            from torchvision.io import decode_jpeg, read_file

            data = [read_file(p) for p in paths["jpg"]]
            gpu = rate(lambda: decode_jpeg(data, device=args.device), len(frames), args.device, args.repeat)
            row(results, "decode JPEG, torchvision.io.decode_jpeg on the GPU (bytes in memory)", gpu, None)
        jpeg_frames = [cv2.cvtColor(cv2.imread(p), cv2.COLOR_BGR2RGB) for p in paths["jpg"][: args.equivalence_frames]]
    return jpeg_frames


def clip_encoder(name: str, args):
    """ClipEncoder for the real architecture `name`, random weights (seeded) unless --clip-weights real."""
    import open_clip
    import torch

    from curation_assets.models.clip import ClipEncoder, load_clip
    from curation_assets.models.registry import ModelSettings

    if args.clip_weights == "real":
        return load_clip(name, "openai", ModelSettings(profile="real", device=args.device, batch_size=args.batch))
    precision = "fp16" if args.device.startswith("cuda") else "fp32"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=None, precision=precision,
                                                                     device=args.device)
    model.eval().requires_grad_(False)
    return ClipEncoder(model, preprocess, open_clip.get_tokenizer(name), device=args.device, model_name=name,
                       pretrained="random", profile="tiny", embed_dim=int(model.text_projection.shape[-1]),
                       batch_size=args.batch, precision=precision)


def bench_clip(frames, args, results, equivalence):
    from curation_assets.models.aesthetics import AestheticScorer, load_aesthetic_head

    for name in args.clip_models.split(","):
        enc = clip_encoder(name, args)
        n = len(frames)
        pixels = [enc.preprocess_images(frames[i : i + enc.batch_size], "tensor") for i in range(0, n, enc.batch_size)]
        alone = rate(lambda: [enc.encode_pixels(p) for p in pixels], n, args.device, args.repeat)
        tensor = rate(lambda: enc.encode_images(frames, "tensor"), n, args.device, args.repeat)
        pil = rate(lambda: enc.encode_images(frames, "pil"), n, args.device, args.repeat)
        row(results, f"CLIP {name}, tensor preprocessing (new)", tensor, alone, note=f"batch {enc.batch_size}, {enc.precision}")
        row(results, f"CLIP {name}, PIL preprocessing (before)", pil, alone)
        pre_t = rate(lambda: enc.preprocess_images(frames, "tensor"), n, args.device, args.repeat)
        pre_p = rate(lambda: enc.preprocess_images(frames, "pil"), n, args.device, args.repeat)
        row(results, f"preprocessing alone for {name}: tensor / PIL", pre_t, pre_p, note="model_alone column = PIL")
        sample = frames[: args.equivalence_frames]
        a, b = enc.encode_images(sample, "pil"), enc.encode_images(sample, "tensor")
        equivalence[f"{name} min cosine tensor vs PIL"] = float((a * b).sum(axis=1).min())
        if name == "ViT-L-14":
            head_path = args.aesthetic_head if Path(args.aesthetic_head).is_file() else None
            head, source = load_aesthetic_head(head_path=head_path, device=args.device) if head_path else (None, None)
            if head is None:
                from curation_assets.models.registry import ModelSettings

                head, source = load_aesthetic_head(ModelSettings(profile="tiny", device=args.device), device=args.device)
            scorer = AestheticScorer(enc, head, profile="bench", model_id="bench", head_path=source)
            e2e = rate(lambda: scorer.score(frames), n, args.device, args.repeat)
            row(results, "aesthetics (ViT-L-14 + LAION head), end to end", e2e, alone,
                note=f"head {'real' if source else 'random'}")
            equivalence["aesthetics max |tensor - PIL|"] = float(np.abs(scorer.score(sample, "pil") - scorer.score(sample, "tensor")).max())


def bench_ocr(frames, args, results, equivalence, jpeg_frames):
    import torch

    from curation_assets.models.ocr import load_text_detector, pipelined_area_ratios
    from curation_assets.models.registry import ModelSettings

    det = craft_from_file(args) if args.craft_weights else load_text_detector(
        ModelSettings(device=args.device), precision=args.ocr_precision)
    n = min(len(frames), args.ocr_frames)
    sub = frames[:n]
    serial = rate(lambda: [det.area_ratio(f) for f in sub], n, args.device, args.repeat)
    piped = rate(lambda: det.area_ratios(sub), n, args.device, args.repeat)
    # the network alone, on inputs prepared beforehand (one frame per call, as detect())
    from easyocr.imgproc import normalizeMeanVariance, resize_aspect_ratio
    import cv2

    xs = [torch.from_numpy(np.transpose(normalizeMeanVariance(
        resize_aspect_ratio(f, 2560, interpolation=cv2.INTER_LINEAR, mag_ratio=1.0)[0]), (2, 0, 1))[None]).to(det.reader.device)
        for f in sub]

    def net_only():
        with torch.no_grad():
            for x in xs:
                det.reader.detector(x)

    alone = rate(net_only, n, args.device, args.repeat)
    row(results, f"OCR area, pipelined area_ratios (new, {det.precision})", piped, alone)
    row(results, f"OCR area, one detect() per frame (before, {det.precision})", serial, alone)
    eq = frames[: args.equivalence_frames]
    per_frame = np.array([det.area_ratio(f) for f in eq])
    equivalence["OCR per-frame ratios (compare across devices)"] = [round(float(r), 7) for r in per_frame]
    equivalence["OCR max |pipelined - per frame|"] = float(np.abs(np.array(pipelined_area_ratios(det, eq)) - per_frame).max())
    if jpeg_frames:
        jpeg = np.array(det.area_ratios(jpeg_frames))
        equivalence["OCR max |JPEG q95 - PNG| per frame"] = float(np.abs(jpeg - per_frame[: len(jpeg)]).max())


def write_craft_fp16(out: str) -> None:
    """EasyOCR's CRAFT weights rounded to float16 (42 MB instead of 83: fits a GPU box transfer)."""
    import torch

    from curation_assets.models.ocr import CRAFT_WEIGHTS, _weights_dir
    from curation_assets.models.registry import ModelSettings

    state = torch.load(str(_weights_dir(ModelSettings()) / CRAFT_WEIGHTS), map_location="cpu", weights_only=False)
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, out)
    print(f"wrote {out}")


def craft_from_file(args):
    """A TextDetector on CRAFT weights from --craft-weights (e.g. the float16-rounded copy, run in
    float32), without easyocr's MD5 check of its own file: run it on the CPU here and on the GPU
    there, and compare the printed per-frame ratios."""
    import easyocr
    import torch
    from easyocr.craft import CRAFT
    from easyocr.detection import copyStateDict, get_textbox

    from curation_assets.models.ocr import TextDetector

    reader = easyocr.Reader(["en"], gpu=args.device.startswith("cuda"), detector=False, recognizer=False,
                            download_enabled=False, verbose=False)
    net = CRAFT()
    if args.craft_weights != "random":  # "random": the architecture alone, when the weights cannot travel
        state = torch.load(args.craft_weights, map_location="cpu", weights_only=False)
        net.load_state_dict({k: v.float() for k, v in copyStateDict(state).items()})
    net = torch.nn.DataParallel(net).to(args.device) if args.device.startswith("cuda") else net
    reader.detector, reader.get_textbox = net.eval(), get_textbox
    return TextDetector(reader, languages=("en",), device=str(reader.device), precision="float32")


def full_size_random_captioner(device: str):
    """VideoBLIP's real architecture (kpyu/video-blip-opt-2.7b-ego4d: ViT-g vision tower, Q-Former,
    OPT-2.7b; 3.74 B parameters) with random weights, built on `device` in float16 (float32 on
    the CPU), the tiny profile's tokenizer (token ids only index embeddings; speed does not
    depend on the weights or the vocabulary's text). No download: the config is written here."""
    import torch
    from transformers import Blip2Config, Blip2QFormerConfig, Blip2VisionConfig, OPTConfig

    from curation_assets.models import videoblip as vb
    from curation_assets.models.videoblip.architecture import ensure_image_token, model_classes
    from curation_assets.models.videoblip.captioner import blip_image_processor
    from curation_assets.models.videoblip.tiny import tiny_tokenizer

    tokenizer = tiny_tokenizer()
    vision = Blip2VisionConfig(hidden_size=1408, intermediate_size=6144, num_hidden_layers=39, num_attention_heads=16,
                               image_size=vb.IMAGE_SIZE, patch_size=14)
    qformer = Blip2QFormerConfig(encoder_hidden_size=1408)
    text = OPTConfig(vocab_size=50272, hidden_size=2560, word_embed_proj_dim=2560, ffn_dim=10240, num_hidden_layers=32,
                     num_attention_heads=32, max_position_embeddings=2048, pad_token_id=1, bos_token_id=2,
                     eos_token_id=2, dropout=0.0, attention_dropout=0.0)
    config = Blip2Config(vision_config=vision.to_dict(), qformer_config=qformer.to_dict(), text_config=text.to_dict(),
                         num_query_tokens=32)
    _, model_class = model_classes()
    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    with torch.random.fork_rng(devices=[]), torch.device(device):
        torch.manual_seed(0)
        model = model_class(config)
    model = model.to(dtype).eval()
    ensure_image_token(model, tokenizer)
    params = sum(p.numel() for p in model.parameters())
    cap = vb.VideoCaptioner(model, tokenizer, blip_image_processor(None), model_id="videoblip-opt-2.7b (random)",
                            profile="bench", device=device, batch_size=vb.caption_batch_size(device))
    return cap, params


def bench_videoblip(frames, args, results):
    from curation_assets.models import videoblip as vb
    from curation_assets.models.registry import ModelSettings

    note = ""
    if args.videoblip == "tiny":
        cap = vb.load_captioner(vb.DEFAULT_CAPTIONER, ModelSettings(profile="tiny", device=args.device))
    elif args.videoblip == "full-random":
        import torch

        t0 = time.perf_counter()
        cap, params = full_size_random_captioner(args.device)
        note = f"{params / 1e9:.2f} B params, built in {time.perf_counter() - t0:.1f} s; "
        if args.device.startswith("cuda"):
            note += f"{torch.cuda.memory_allocated() / 2**30:.1f} GiB weights; "
    else:
        cap = vb.load_captioner(args.videoblip, ModelSettings(profile="real", device=args.device))
    clips = [frames[i : i + 3] for i in range(0, len(frames) - 2, 3)]
    # a fixed amount of work per clip: random weights would stop at a random EOS
    tokens = {"max_new_tokens": args.caption_tokens, "min_new_tokens": args.caption_tokens}
    default, default_mode = cap.batch_size, cap.preprocess_mode
    modes = [default_mode] + (["pil"] if default_mode != "pil" else [])
    for batch in sorted({int(b) for b in args.caption_batches.split(",")} | {default}):
        for mode in (modes if batch == default else [default_mode]):
            cap.batch_size, cap.preprocess_mode = batch, mode
            n = max(batch, args.caption_clips)
            videos = [clips[i % len(clips)] for i in range(n)]
            e2e = rate(lambda: cap.caption(videos, **tokens), n, args.device, 1)
            peak = ""
            if args.device.startswith("cuda"):
                import torch

                peak = f", peak {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB"
            row(results, f"VideoBLIP ({args.videoblip}), batch {batch}{' (default here)' if batch == default else ''}",
                e2e, None, unit="clips/s",
                note=f"{note}preprocessing {mode}, beam {cap.generation['num_beams']}, {args.caption_tokens} new tokens{peak}")
    cap.batch_size, cap.preprocess_mode = default, default_mode


def bench_graph(args, results):
    """Whole graph (CLI, tiny profile) over N shards of the synthetic demo set: videos/s."""
    import subprocess

    from curation_assets.samples.synthetic import write_demo_set

    with tempfile.TemporaryDirectory(prefix="gpu_bench_graph_") as tmp:
        tmp = Path(tmp)
        manifest = write_demo_set(tmp / "inputs")
        lines = manifest.read_text().splitlines()
        shard_size = max(1, -(-len(lines) // args.graph))  # the demo set split into N shards
        env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
        env = dict(env, CURATION_MODEL_PROFILE="tiny", CURATION_DEVICE=args.device, HF_HUB_OFFLINE="1",
                   PYTHONPATH=str(ROOT))
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "curation_assets.cli", "run", "--input", str(manifest), "--data-dir",
                              str(tmp / "data"), "--shard-size", str(shard_size), "--model-profile", "tiny",
                              "--workers", str(args.graph)],
                             env=env, cwd=ROOT, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        if out.returncode != 0:
            print(out.stdout[-2000:], out.stderr[-2000:])
        row(results, f"whole graph, CLI, {args.graph} shards of the demo set ({len(lines)} videos)",
            len(lines) / seconds, None, unit="videos/s", note=f"{seconds:.0f} s incl. start-up; rc {out.returncode}")
        print(out.stdout[-1500:])
        step_overlaps(tmp / "data" / "dagster_home", results)


def step_overlaps(home: Path, results: list) -> None:
    """From the instance's event log: each run's step intervals, and how they overlapped."""
    from dagster import DagsterEventType, DagsterInstance

    os.environ["DAGSTER_HOME"] = str(home)
    intervals = []  # (run, step, start, end)
    with DagsterInstance.get() as instance:
        for run in instance.get_runs():
            starts = {}
            for record in instance.all_logs(run.run_id):
                event = record.dagster_event
                if event is None or not event.step_key:
                    continue
                if event.event_type == DagsterEventType.STEP_START:
                    starts[event.step_key] = record.timestamp
                elif event.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
                    intervals.append((run.run_id[:8], event.step_key, starts.get(event.step_key, record.timestamp),
                                      record.timestamp))
    if not intervals:
        return
    t0 = min(i[2] for i in intervals)
    for run_id, step, start, end in sorted(intervals, key=lambda i: i[2]):
        print(f"  {run_id} {step:<22} {start - t0:7.1f} s -> {end - t0:7.1f} s")
    model_steps = {"captions", "image_scores"}

    def overlap(a, b):
        return max(0.0, min(a[3], b[3]) - max(a[2], b[2]))

    gpu_gpu = sum(overlap(a, b) for a in intervals for b in intervals
                  if a[0] < b[0] and a[1] in model_steps and b[1] in model_steps)
    gpu_cpu = sum(overlap(a, b) for a in intervals for b in intervals
                  if a[0] != b[0] and a[1] in model_steps and b[1] == "video_pass")
    print(f"  model steps of different runs overlapping: {gpu_gpu:.1f} s (pool 'gpu', limit 1: expect 0)")
    print(f"  a model step overlapping another run's video_pass: {gpu_cpu:.1f} s (decode overlapping scoring)")
    results.append({"stage": "graph overlap", "model_steps_overlap_s": gpu_gpu, "model_vs_decode_overlap_s": gpu_cpu})


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if _cuda() else "cpu")
    p.add_argument("--videos", default=str(DEFAULT_VIDEOS))
    p.add_argument("--frames-dir", default=None, help="PNG/JPEG frames instead of decoding --videos")
    p.add_argument("--frames", type=int, default=None, help="frames per CLIP run (default 512 on CUDA, 32 on CPU)")
    p.add_argument("--batch", type=int, default=None, help="CLIP batch (default 256 on CUDA, 32 on CPU)")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--clip-models", default="ViT-B-32,ViT-L-14",
                   help="CLIP architectures to time (ViT-L-14 also times the aesthetic head)")
    p.add_argument("--clip-weights", choices=["random", "real"], default="random")
    p.add_argument("--aesthetic-head", default=str(DEFAULT_HEAD))
    p.add_argument("--ocr-frames", type=int, default=None, help="frames per OCR run (default 256 on CUDA, 15 on CPU)")
    p.add_argument("--craft-weights", default=None, help="CRAFT weights file to use instead of easyocr's (float32 math)")
    p.add_argument("--write-craft-fp16", default=None, help="write CRAFT weights rounded to float16 here and exit")
    p.add_argument("--ocr-precision", default="auto", choices=["auto", "float32", "bfloat16"])
    p.add_argument("--videoblip", default="tiny",
                   help="'tiny', 'full-random' (the real 3.74 B architecture, random weights) or a local checkpoint")
    p.add_argument("--caption-batches", default="8")
    p.add_argument("--caption-clips", type=int, default=16, help="clips per timed call (at least one batch)")
    p.add_argument("--caption-tokens", type=int, default=30, help="new tokens per caption (min = max)")
    p.add_argument("--equivalence-frames", type=int, default=15)
    p.add_argument("--skip", default="", help="comma list of stages to skip: decode,clip,ocr,videoblip")
    p.add_argument("--graph", type=int, default=0, help="also run the whole graph over N shards (needs the project)")
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument("--write-frames", default=None, help="write the sampled frames as PNG here and exit (for --frames-dir)")
    args = p.parse_args(argv)
    if args.write_craft_fp16:
        write_craft_fp16(args.write_craft_fp16)
        return 0
    cuda = args.device.startswith("cuda")
    args.frames = args.frames or (512 if cuda else 32)
    args.batch = args.batch or (256 if cuda else 32)
    args.ocr_frames = args.ocr_frames or (256 if cuda else 15)
    skip = set(filter(None, args.skip.split(",")))

    import torch

    device_name = torch.cuda.get_device_name(0) if cuda else f"CPU {platform.processor() or platform.machine()}"
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"device: {args.device} ({device_name}), {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} torch threads, load {load}")
    base = sample_frames(args)
    if args.write_frames:
        import cv2

        Path(args.write_frames).mkdir(parents=True, exist_ok=True)
        for i, rgb in enumerate(base):
            cv2.imwrite(str(Path(args.write_frames) / f"{i:03d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        print(f"wrote {len(base)} frames to {args.write_frames}")
        return 0
    frames = repeat_to(base, args.frames)
    print(f"{len(base)} distinct frames, {len(frames)} per run\n")
    print("| stage | end to end | model alone | unit | note |\n|---|---|---|---|---|")
    results: list = []
    equivalence: dict = {}
    jpeg_frames = bench_decode(base if not cuda else frames, args, results) if "decode" not in skip else []
    if "clip" not in skip:
        bench_clip(frames, args, results, equivalence)
    if "ocr" not in skip:
        bench_ocr(repeat_to(base, args.ocr_frames), args, results, equivalence, jpeg_frames)
    if "videoblip" not in skip:
        bench_videoblip(base, args, results)
    if args.graph:
        bench_graph(args, results)
    print("\nequivalence:", json.dumps(equivalence, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps({"device": args.device, "device_name": device_name, "load": load,
                                               "results": results, "equivalence": equivalence}, indent=1))
    return 0


def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


if __name__ == "__main__":
    sys.exit(main())
