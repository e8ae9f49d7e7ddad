#!/usr/bin/env bash
# Our renderer (`tether render`) beside Debian's chafa and img2sixel on the same 1920x1080
# picture (the test desktop, or IMG=FILE.png): time per run, bytes written, and PSNR of what a
# terminal would show.
#
#   bash benches/compare.sh            (RUNS=5 by default; needs chafa, img2sixel, sixel2png:
#                                       apt-get install chafa libsixel-bin)
#   IMG=/usr/share/desktop-base/softwaves-theme/grub/grub-16x9.png bash benches/compare.sh
#
# Times are whole runs of each program (start, PNG decode, scale, encode, write), averaged over
# RUNS, on the release build. PSNR: sixel is decoded by libsixel's sixel2png and compared with
# the picture; text is read by a small terminal model (render::decode) and compared with the
# picture box-averaged exactly in f64 (render::decode::box_reference, not our scaler) to the
# cells' resolution (200x120 for half blocks, 400x180 for sextants).
# chafa's default symbol set uses glyphs that have no exact pixel meaning, so it gets no PSNR.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}

for p in chafa img2sixel sixel2png; do
  command -v "$p" >/dev/null || { echo "compare.sh: needs $p (apt-get install chafa libsixel-bin)" >&2; exit 1; }
done

cargo build --release --quiet --bin tether
cargo bench --quiet --bench compare_tool --no-run 2>/dev/null
tool() { cargo bench --quiet --bench compare_tool -- "$@" 2>/dev/null; }
TETHER="$CARGO_TARGET_DIR/release/tether"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [[ -n ${IMG:-} ]]; then
  [[ -f $IMG ]] || { echo "compare.sh: no picture $IMG" >&2; exit 1; }
else
  IMG="$work/desktop.png"
  tool testimage "$IMG"
fi

# run NAME KIND(text:GLYPHS:SIZE | sixel | none) COMMAND...
run() {
  local name=$1 kind=$2
  shift 2
  local out="$work/out" start end ms bytes db="-"
  "$@" > "$out"  # warm the page cache
  start=$(date +%s%N)
  for _ in $(seq "$RUNS"); do "$@" > "$out"; done
  end=$(date +%s%N)
  ms=$(( (end - start) / RUNS / 1000000 ))
  bytes=$(wc -c < "$out")
  case $kind in
    text:*)
      IFS=: read -r _ glyphs size <<< "$kind"
      db=$(tool ansi-psnr "$IMG" "$out" "$size" "$glyphs") ;;
    sixel)
      sixel2png < "$out" > "$work/decoded.png" 2>/dev/null && db=$(tool psnr "$IMG" "$work/decoded.png") ;;
  esac
  printf '| %-44s | %7s ms | %9s | %8s |\n' "$name" "$ms" "$bytes" "$db"
}

printf '| %-44s | %10s | %9s | %8s |\n' "tool, mode" "time" "bytes" "PSNR dB"
printf '|%s|%s|%s|%s|\n' "----------------------------------------------" "------------" "-----------" "----------"
run "tether half blocks 200x60" text:halfblock:200x60 \
  "$TETHER" render "$IMG" --mode halfblock --size 200x60 --stretch
run "chafa half blocks 200x60 (--symbols half)" text:halfblock:200x60 \
  chafa -f symbols --symbols half -c full --stretch -s 200x60 "$IMG"
run "tether sextants 200x60" text:sextant:200x60 \
  "$TETHER" render "$IMG" --mode sextant --size 200x60 --stretch
run "chafa sextants 200x60 (--symbols sextant)" text:sextant:200x60 \
  chafa -f symbols --symbols sextant -c full --stretch -s 200x60 "$IMG"
run "chafa default symbols 200x60" none \
  chafa -f symbols -c full --stretch -s 200x60 "$IMG"
run "tether sixel 1920x1080" sixel \
  "$TETHER" render "$IMG" --mode sixel --size 192x54 --cell 10x20
run "chafa sixel 192x54 cells" sixel \
  chafa -f sixels --stretch -s 192x54 "$IMG"
run "img2sixel 1920x1080 (dithered, default)" sixel \
  img2sixel "$IMG"
run "img2sixel 1920x1080 (-d none)" sixel \
  img2sixel -d none "$IMG"
