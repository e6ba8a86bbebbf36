#!/usr/bin/env bash
# A look at the book in a real browser: builds it, serves it on 127.0.0.1, takes headless
# Chromium screenshots of the introduction and of one step's chapter, for a person to look at,
# and fails on what a reader would meet at 1280 px and at 400 px (book/smoke-check.html): code
# cut off, tables past the column, images that did not load, graph text smaller than 12 px.
#
#   book/smoke.sh [OUT_DIR]        (default OUT_DIR: target/book-smoke)
#
# Needs python3 (for its http.server) and Chromium, and installs them with apt-get where they are
# missing (scripts/install-if-missing); another browser binary can be named with CHROMIUM=.... The book is built with the `mdbook` binary when there is
# one (`cargo install mdbook --locked`), otherwise with the book's own test, which builds it with
# mdBook's library. The server is stopped on every way out of this script.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/target/book-smoke}"
if [ -z "${CHROMIUM:-}" ] && ! command -v chromium-browser > /dev/null && ! command -v google-chrome > /dev/null; then
    "$root/scripts/install-if-missing" chromium chromium
fi
"$root/scripts/install-if-missing" python3 python3
chromium="${CHROMIUM:-$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)}"
pages=(introduction.html 05_backpressure.html)

die() { echo "smoke: $*" >&2; exit 1; }
[ -n "$chromium" ] || die "no Chromium found: install it (apt-get install chromium) or set CHROMIUM=/path/to/it"
command -v python3 > /dev/null || die "python3 is needed to serve the book"

# 1. Build.
if command -v mdbook > /dev/null; then
    html="$out/html"
    rm -rf "$html"
    echo "smoke: building the book with $(mdbook --version)"
    mdbook build "$root/book" --dest-dir "$html"
else
    echo "smoke: no mdbook binary; building the book with its test (cargo test -p eventkit-book)"
    (cd "$root" && cargo test -q -p eventkit-book --test book builds)
    html="$root/target/tmp/eventkit-book"
fi
for page in "${pages[@]}"; do
    [ -f "$html/$page" ] || die "the build has no $page (in $html)"
done
mkdir -p "$out"

# 2. Serve, on a free port of the loopback interface only.
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
python3 -m http.server "$port" --bind 127.0.0.1 --directory "$html" > "$out/http.log" 2>&1 &
server=$!
profile="$(mktemp -d)"
cleanup() {
    kill "$server" 2> /dev/null || true
    wait "$server" 2> /dev/null || true
    rm -rf "$profile"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for _ in $(seq 1 50); do
    if (exec 3<> "/dev/tcp/127.0.0.1/$port") 2> /dev/null; then
        break
    fi
    kill -0 "$server" 2> /dev/null || die "the web server did not start: $(cat "$out/http.log")"
    sleep 0.1
done

# 3. Screenshots.
for page in "${pages[@]}"; do
    shot="$out/${page%.html}.png"
    rm -f "$shot"
    "$chromium" --headless --no-sandbox --disable-gpu --disable-background-networking \
        --disable-component-update --disable-sync --no-first-run --hide-scrollbars \
        --user-data-dir="$profile" --virtual-time-budget=5000 \
        --screenshot="$shot" --window-size=1280,1600 "http://127.0.0.1:$port/$page" \
        > "$out/chromium.log" 2>&1 || die "Chromium failed on $page: see $out/chromium.log"
    [ -s "$shot" ] || die "no screenshot of $page"
    echo "smoke: $page -> $shot ($(wc -c < "$shot") bytes)"
done
# 4. What a reader would meet, measured from the DOM at a desktop's width and a phone's: code
#    cut off, tables that run past the column, images that did not load, graph text under 12 px.
cp "$root/book/smoke-check.html" "$html/_smoke-check.html"
all_pages="$(cd "$html" && ls [0-9][0-9]_*.html introduction.html tracks.html contract.html checker.html production.html teachers.html troubleshooting.html 2> /dev/null | paste -sd, -)"
failed=0
for width in 1280 400; do
    "$chromium" --headless --no-sandbox --disable-gpu --disable-background-networking \
        --disable-component-update --disable-sync --no-first-run \
        --user-data-dir="$profile" --virtual-time-budget=60000 --window-size=1400,1000 \
        --dump-dom "http://127.0.0.1:$port/_smoke-check.html?width=$width&pages=$all_pages" \
        > "$out/dom-$width.html" 2> "$out/chromium.log" || die "Chromium failed on the DOM check: see $out/chromium.log"
    # Only the page's result, not the script that wrote it.
    result="$(sed -n '/<pre id="result">/,/<\/pre>/p' "$out/dom-$width.html")"
    grep -q "^<pre id=\"result\">CHECKED" <<< "$result" || die "the DOM check did not finish at $width px: see $out/dom-$width.html"
    if grep -q "^PROBLEM" <<< "$result"; then
        grep "^PROBLEM" <<< "$result" | sed 's/^/smoke: /; s/<\/pre>.*//' >&2
        failed=1
    else
        echo "smoke: $(grep -o 'CHECKED [^<]*' <<< "$result"): nothing cut off, every image loaded, graph text readable"
    fi
done
[ "$failed" = 0 ] || die "what a reader would meet is listed above"
echo "smoke: done; look at the screenshots in $out"
