# What the GPU benchmarks need on a lent machine that has no package index (its image has torch, transformers,
# onnxruntime and tokenizers, not PyAV, julius, soundfile, CTranslate2 or faster-whisper).
#
#   bash benchmarks/device.sh pack       # here: the wheels, unpacked and repacked as .tar.xz (50 MB instead of 80)
#                                        # into .devcarry/ (git-ignored), with the speech clip of bench_cpu_speech.py
#                                        # and Whisper tiny.en's tokenizer (bench_asr.py --tokenizer)
#   source benchmarks/device.sh setup    # there, from the repository root: unpacked into /tmp/site, importable
#
# CTranslate2 4.8's wheels are built for CUDA 12: on the GPU it opens libcublas.so.12 by name. Where only CUDA 13's
# cuBLAS is installed (torch cu130), setup points that name at libcublas.so.13, whose entry points CTranslate2 calls
# (cublasCreate_v2, cublasSetStream_v2, cublasGemmEx, cublasGemmStridedBatchedEx, cublasSgemm_v2, ...) keep their
# signatures. The speech-recognition rows measured this way say so.
# sourced: no `set -e`, which would stay on in the caller's shell
case "$1" in
pack)
    mkdir -p .devcarry
    grep -qx '/.devcarry/' .git/info/exclude 2>/dev/null || echo '/.devcarry/' >>.git/info/exclude
    wheels=$(mktemp -d)
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d "$wheels" av==18.1.0 ctranslate2==4.8.5 faster-whisper==1.2.1 julius==0.2.8 \
        soundfile==0.14.0 cffi==2.1.1 pycparser==3.12
    for wheel in "$wheels"/*.whl; do
        name=$(basename "$wheel" | cut -d- -f1)
        rm -rf "$wheels/unpacked" && mkdir "$wheels/unpacked" && unzip -q "$wheel" -d "$wheels/unpacked"
        tar cf - -C "$wheels/unpacked" . | xz -T0 -6 >".devcarry/$name.tar.xz"
    done
    rm -rf "$wheels"
    cp "${SPEECH:-/work/bench-cache/stimulus/speech.wav}" .devcarry/speech.wav
    # bench_asr.py's tokenizer: the packaged tiny.en's (its wheel is not carried)
    tiny=$(${PYTHON:-.venv/bin/python} -c 'from tribev2.events import packaged_tiny_whisper; print(packaged_tiny_whisper())')
    cp "$tiny/tokenizer.json" .devcarry/whisper-tokenizer.json
    du -sh .devcarry
    ;;
setup)
    mkdir -p /tmp/site
    for archive in .devcarry/*.tar.xz; do tar xJf "$archive" -C /tmp/site; done
    # the package itself, installed: its data/ folder is tribev2.data only once installed
    python3 -m pip install -q --no-deps --no-build-isolation --no-index --target /tmp/site --upgrade . >/dev/null
    export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
    cublas=$(python3 -c 'import glob, sys; print(next(iter(sorted(p for d in sys.path for p in glob.glob(d + "/nvidia/**/libcublas.so.1[3-9]", recursive=True))), ""))')
    if [ -n "$cublas" ] && ! python3 -c 'import ctypes; ctypes.CDLL("libcublas.so.12")' 2>/dev/null; then
        mkdir -p /tmp/cublas12 && ln -sf "$cublas" /tmp/cublas12/libcublas.so.12
        export LD_LIBRARY_PATH="/tmp/cublas12:$(dirname "$cublas")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        echo "libcublas.so.12 -> $cublas"
    fi
    ;;
*)
    echo "usage: bash benchmarks/device.sh pack | source benchmarks/device.sh setup" >&2
    return 2 2>/dev/null || exit 2
    ;;
esac
