/* Papertide: typeset the LaTeX in titles, abstracts and comments with KaTeX's auto-render.
 * Elements to render carry class="math"; without JavaScript their escaped source text stays
 * readable. No inline scripts: the Content-Security-Policy allows scripts from 'self' only. */
(function () {
  "use strict";

  function delimiters(inline) {
    // Cards (data-math="inline") typeset display formulas inline, to keep excerpts compact.
    return [
      { left: "$$", right: "$$", display: !inline },
      { left: "\\[", right: "\\]", display: !inline },
      { left: "\\(", right: "\\)", display: false },
      { left: "$", right: "$", display: false }
    ];
  }

  function renderMath() {
    if (typeof window.renderMathInElement !== "function") {
      return;
    }
    var nodes = document.querySelectorAll(".math");
    for (var i = 0; i < nodes.length; i++) {
      window.renderMathInElement(nodes[i], {
        delimiters: delimiters(nodes[i].getAttribute("data-math") === "inline"),
        throwOnError: false,
        // KaTeX's defaults keep \href, \url and HTML extensions off (trust: false).
        trust: false,
        strict: "ignore"
      });
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", renderMath);
  } else {
    renderMath();
  }
})();
