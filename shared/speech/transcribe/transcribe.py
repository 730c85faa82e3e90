"""Transcribe one audio file offline with faster-whisper; write Amazon Transcribe's output shape.

Run by cuepoint-speech with the models venv's python (`<models>/venv/bin/python`). Nothing is
fetched: the model is a local CTranslate2 directory and the hub is switched off.

Exit codes (read by the Rust side): 0 done, 3 the model cannot be loaded, 4 the audio cannot be
read, 5 the engine's packages cannot be imported, 1 anything else.
"""

import argparse
import json
import os
import sys
import time

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PUNCTUATION = ".,?!;:"


def seconds(x):
    text = f"{x:.3f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def split_word(raw):
    """Whisper words carry their punctuation ("Hello," " dog."): split it off as Transcribe does."""
    word = raw.strip()
    lead = ""
    while word and word[0] in "\"'(¿¡":
        lead += word[0]
        word = word[1:]
    trail = ""
    while word and word[-1] in PUNCTUATION + "\"')":
        trail = word[-1] + trail
        word = word[:-1]
    marks = [c for c in trail if c in PUNCTUATION]
    return word, marks


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--audio", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--info", required=True)
    parser.add_argument("--job-name", default="cuepoint")
    parser.add_argument("--language", default="")
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--vad-filter", action="store_true")
    args = parser.parse_args()

    try:
        from faster_whisper import WhisperModel
        from faster_whisper.audio import decode_audio
    except Exception as e:  # noqa: BLE001 - any import failure means a broken engine
        print(f"cannot import faster_whisper: {e}", file=sys.stderr)
        return 5

    try:
        model = WhisperModel(
            args.model,
            device="cpu",
            compute_type="int8",
            cpu_threads=args.threads,
            local_files_only=True,
        )
    except Exception as e:  # noqa: BLE001
        print(f"cannot load model {args.model}: {type(e).__name__}: {e}", file=sys.stderr)
        return 3

    try:
        audio = decode_audio(args.audio, sampling_rate=16000)
    except Exception as e:  # noqa: BLE001
        print(f"cannot read audio {args.audio}: {type(e).__name__}: {e}", file=sys.stderr)
        return 4

    cpu_before = time.process_time()
    segments, info = model.transcribe(
        audio,
        language=args.language or None,
        beam_size=args.beam_size,
        word_timestamps=True,
        vad_filter=args.vad_filter,
        condition_on_previous_text=False,
    )

    items = []
    for segment in segments:
        for w in segment.words or []:
            word, marks = split_word(w.word)
            if word:
                items.append(
                    {
                        "id": len(items),
                        "start_time": seconds(w.start),
                        "end_time": seconds(max(w.end, w.start)),
                        "alternatives": [
                            {"confidence": f"{w.probability:.4f}", "content": word}
                        ],
                        "type": "pronunciation",
                    }
                )
            for mark in marks:
                items.append(
                    {
                        "id": len(items),
                        "alternatives": [{"confidence": "0.0", "content": mark}],
                        "type": "punctuation",
                    }
                )

    transcribe_cpu = time.process_time() - cpu_before

    text = ""
    for item in items:
        content = item["alternatives"][0]["content"]
        if item["type"] == "punctuation" or not text:
            text += content
        else:
            text += " " + content

    document = {
        "jobName": args.job_name,
        "accountId": "local",
        "status": "COMPLETED",
        "results": {"transcripts": [{"transcript": text}], "items": items},
    }
    with open(args.output, "w", encoding="utf-8") as f:
        json.dump(document, f, ensure_ascii=False)
    with open(args.info, "w", encoding="utf-8") as f:
        json.dump(
            {
                "duration": info.duration,
                "language": info.language,
                "language_probability": info.language_probability,
                "transcribe_cpu_seconds": transcribe_cpu,
            },
            f,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
