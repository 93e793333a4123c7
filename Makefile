# Quick start:
#   make demo   set up .venv, then make, prepare, train (standard + DwO), evaluate and
#               export the quick synthetic data set's model
#   make test   set up .venv, then run the test suite

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DATA := data/quick
RUN := runs/quick
# A recording of the quick set whose subject the face detector finds.
DEMO_RECORDING ?= $(DATA)/raw/00024
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: demo test test-all setup clean-demo

setup: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

$(DATA)/raw/.done: | $(VENV)/.installed
	$(PY) recipes/make_synthetic.py --output_dir=$(DATA)/raw --preset=quick --num_workers=2 --overwrite
	touch $@

$(DATA)/tfds/.done: $(DATA)/raw/.done
	$(PY) recipes/prepare_gazecapture.py --manual_dir=$(DATA)/raw --data_dir=$(DATA)/tfds --num_workers=2 --overwrite
	touch $@

# Rerunning after an interruption resumes the training from its checkpoint; a
# finished run is trained again only when the flagfile or the data changed.
$(RUN)/metrics.json: $(DATA)/tfds/.done recipes/configs/synthetic_quick.flags
	$(PY) recipes/train_tat.py --flagfile=recipes/configs/synthetic_quick.flags \
		--data_dir=$(DATA)/tfds --model_dir=$(RUN) $(if $(wildcard $(RUN)/metrics.json),--overwrite,)

demo: $(VENV)/.installed $(RUN)/metrics.json
	$(PY) tflite/export.py --model_dir=$(RUN) --mode=int8 --output=$(RUN)/model_int8.tflite --overwrite
	$(PY) tflite/evaluate.py --tflite=$(RUN)/model_int8.tflite --data_dir=$(DATA)/tfds \
		--output=$(RUN)/metrics_int8.json --overwrite
	$(PY) tflite/benchmark.py --tflite=$(RUN)/model_int8.tflite --threads=1 \
		--output=$(RUN)/benchmark_int8.json --overwrite
	@echo
	@echo "Keras model:  $(RUN)/model.keras   metrics: $(RUN)/metrics.json"
	@echo "TFLite int8:  $(RUN)/model_int8.tflite   metrics: $(RUN)/metrics_int8.json"
	@echo "Latency:      $(RUN)/benchmark_int8.json"
	@echo "Logs:         $(VENV)/bin/tensorboard --logdir $(RUN)/logs"
	@echo
	@echo "Estimator: camera frames of $(DEMO_RECORDING) to points on its screen:"
	$(PY) recipes/estimate.py --model=$(RUN)/model_int8.tflite --frames=$(DEMO_RECORDING) \
		--max_frames=8 --output=$(RUN)/estimate/gaze.csv --draw_dir=$(RUN)/estimate/drawn

test: $(VENV)/.installed
	$(PY) -m pytest -n 2 -q

test-all: $(VENV)/.installed
	$(PY) -m pytest -n 2 -q -m ""

clean-demo:
	rm -rf $(DATA) $(RUN)
