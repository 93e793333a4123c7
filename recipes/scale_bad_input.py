r"""Bad recordings among good ones, at scale (docs/data.md, "At
GazeCapture's size"): the 16k-frame subset that `benchmark_scale.py` linked
into runs/scale/size13000/raw, plus damaged copies of three other tenth-twin
recordings (five truncated JPEGs; a dotInfo.json one entry shorter than the
other files; no faceGrid.json), prepared with 2 workers. Writes the skips
and the printed summary to docs/results/scale/bad_input.json.

  python recipes/scale_bad_input.py
"""
import glob
import json
import os
import shutil
import subprocess
import sys
import time

root = "runs/scale/bad_input"
shutil.rmtree(root, ignore_errors=True)
raw = os.path.join(root, "raw")
os.makedirs(raw)
for link in sorted(glob.glob("runs/scale/size13000/raw/*")):
    os.symlink(os.path.realpath(link), os.path.join(raw, os.path.basename(link)))
last = sorted(os.listdir("data/tenth/raw"))[-4:-1]
damaged = {}
for number, name in zip(("90001", "90002", "90003"), last):
    target = os.path.join(raw, number)
    shutil.copytree(os.path.join("data/tenth/raw", name), target)
    damaged[number] = name
frames = sorted(glob.glob(os.path.join(raw, "90001", "frames", "*.jpg")))[:5]
for path in frames:
    with open(path, "rb") as f:
        head = f.read(1000)
    with open(path, "wb") as f:
        f.write(head)
with open(os.path.join(raw, "90002", "dotInfo.json")) as f:
    dots = json.load(f)
with open(os.path.join(raw, "90002", "dotInfo.json"), "w") as f:
    json.dump({k: v[:-1] for k, v in dots.items()}, f)
os.remove(os.path.join(raw, "90003", "faceGrid.json"))
data_dir = os.path.join(root, "tfds")
command = [sys.executable, "recipes/prepare_gazecapture.py", f"--manual_dir={raw}",
           f"--data_dir={data_dir}", "--num_workers=2"]
started = time.perf_counter()
result = subprocess.run(command, capture_output=True, text=True)
seconds = time.perf_counter() - started
skips_path = glob.glob(os.path.join(data_dir, "gaze_capture", "size64", "*", "skips.json"))[0]
with open(skips_path) as f:
    skips = json.load(f)
summary = [line for line in result.stdout.splitlines() if line.strip()]
record = {"command": " ".join(command[1:]), "damaged_copies_of": damaged,
          "damage": {"90001": "5 JPEGs truncated to 1,000 bytes",
                     "90002": "dotInfo.json one entry shorter than the other files",
                     "90003": "faceGrid.json missing"},
          "returncode": result.returncode, "seconds": round(seconds, 1),
          "skips": skips, "printed": summary[-12:]}
with open("docs/results/scale/bad_input.json", "w") as f:
    json.dump(record, f, indent=1)
print("\n".join(summary[-12:]))
