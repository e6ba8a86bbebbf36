// Code included from the solutions keeps the indentation it has in its file: a worker's loop,
// nested in a closure in a method, starts twenty columns in. This removes the indentation that
// every line of a code block shares, so that the code starts at the left edge. It only moves
// whitespace inside text nodes, so syntax highlighting (applied before or after) is unaffected.
(function () {
    "use strict";

    function commonIndent(text) {
        let min = Infinity;
        for (const line of text.split("\n")) {
            if (line.trim() === "") {
                continue;
            }
            const indent = line.length - line.replace(/^ +/, "").length;
            min = Math.min(min, indent);
        }
        return min === Infinity ? 0 : min;
    }

    function dedent(code) {
        const cut = commonIndent(code.textContent);
        if (cut === 0) {
            return;
        }
        const walker = document.createTreeWalker(code, NodeFilter.SHOW_TEXT);
        let atLineStart = true;
        let removed = 0;
        for (let node = walker.nextNode(); node !== null; node = walker.nextNode()) {
            let out = "";
            for (const ch of node.nodeValue) {
                if (atLineStart && ch === " " && removed < cut) {
                    removed += 1;
                    continue;
                }
                out += ch;
                atLineStart = ch === "\n";
                if (atLineStart) {
                    removed = 0;
                }
            }
            node.nodeValue = out;
        }
    }

    function dedentAll() {
        document.querySelectorAll("pre > code").forEach(dedent);
    }

    if (document.readyState === "loading") {
        document.addEventListener("DOMContentLoaded", dedentAll);
    } else {
        dedentAll();
    }
})();
