# Quick start:
#   make demo   set up .venv, then render and prepare the bench synthetic set, train
#               standard + DwO on 4,000 of its training frames, export and evaluate the
#               model, and print what it is worth
#   make test   set up .venv, then run the test suite

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The evidence protocol's bench set: the demo's model trains as its runs do.
DATA := data/bench
RUN := runs/demo
# A test recording of the bench set (a subject training never saw): a phone
# held upright.
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
	$(PY) recipes/make_synthetic.py --output_dir=$(DATA)/raw --preset=bench --num_workers=2 --overwrite
	touch $@

$(DATA)/tfds/.done: $(DATA)/raw/.done
	$(PY) recipes/prepare_gazecapture.py --manual_dir=$(DATA)/raw --data_dir=$(DATA)/tfds --num_workers=2 --overwrite
	touch $@

# Rerunning after an interruption resumes the training from its checkpoint; a
# finished run is trained again only when the flagfile or the data changed.
$(RUN)/metrics.json: $(DATA)/tfds/.done recipes/configs/synthetic_demo.flags
	$(PY) recipes/train_tat.py --flagfile=recipes/configs/synthetic_demo.flags \
		--data_dir=$(DATA)/tfds --model_dir=$(RUN) $(if $(wildcard $(RUN)/metrics.json),--overwrite,)

demo: $(VENV)/.installed $(RUN)/metrics.json
	$(PY) tflite/export.py --model_dir=$(RUN) --mode=int8 --output=$(RUN)/model_int8.tflite --overwrite
	$(PY) tflite/evaluate.py --tflite=$(RUN)/model_int8.tflite --data_dir=$(DATA)/tfds \
		--output=$(RUN)/metrics_int8.json --overwrite
	$(PY) tflite/benchmark.py --tflite=$(RUN)/model_int8.tflite --threads=1 \
		--output=$(RUN)/benchmark_int8.json --overwrite
	@echo
	@echo "Estimator: camera frames of $(DEMO_RECORDING) to points on its screen:"
	$(PY) recipes/estimate.py --model=$(RUN)/model_int8.tflite --frames=$(DEMO_RECORDING) \
		--max_frames=8 --output=$(RUN)/estimate/gaze.csv --draw_dir=$(RUN)/estimate/drawn
	@echo
	@echo "Keras model:  $(RUN)/model.keras   metrics: $(RUN)/metrics.json"
	@echo "TFLite int8:  $(RUN)/model_int8.tflite   metrics: $(RUN)/metrics_int8.json"
	@echo "Latency:      $(RUN)/benchmark_int8.json"
	@echo "Logs:         $(VENV)/bin/tensorboard --logdir $(RUN)/logs"
	@echo
	@echo "What the model is worth, on the test split (subjects training never saw):"
	@$(PY) recipes/demo_summary.py --model_dir=$(RUN) --data_dir=$(DATA)/tfds

test: $(VENV)/.installed
	$(PY) -m pytest -n 2 -q

test-all: $(VENV)/.installed
	$(PY) -m pytest -n 2 -q -m ""

clean-demo:
	rm -rf $(DATA) $(RUN)
