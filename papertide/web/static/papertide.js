/* Papertide: typeset the LaTeX in titles, abstracts and comments with KaTeX.
 *
 * Elements to render carry class="math"; without JavaScript their escaped source text stays
 * readable. No inline scripts: the Content-Security-Policy allows scripts from 'self' only.
 *
 * Abstracts are not clean LaTeX: they hold prices ("$5 and $10"), and some sources strip the
 * backslashes ("$boldsymbol{inftyBench+}, and other ..."). So delimiters follow pandoc's rules
 * (an opening $ has no space after it, a closing $ no space before it and no digit after it),
 * and a span that reads like prose (three plain words in a row outside \text{}) or is very long
 * is left as text rather than typeset into a run of italic letters.
 */
(function () {
  "use strict";

  var PROSE = /[A-Za-z]{3,}[,.;:]?\s+[A-Za-z]{2,}[,.;:]?\s+[A-Za-z]{3,}/;
  var MAX_LENGTH = 400;

  function looksLikeMath(tex) {
    if (!tex.trim() || tex.length > MAX_LENGTH) {
      return false;
    }
    var outsideText = tex.replace(/\\(?:text|textrm|textit|textbf|mathrm|operatorname)\s*\{[^}]*\}/g, " ");
    return !PROSE.test(outsideText);
  }

  // Split a string into text and math pieces: [{text}] or [{tex, display}].
  function split(source, inline) {
    var pieces = [];
    var text = "";
    var i = 0;
    while (i < source.length) {
      var found = matchAt(source, i, inline);
      if (found && looksLikeMath(found.tex)) {
        if (text) { pieces.push({ text: text }); text = ""; }
        pieces.push(found);
        i = found.end;
      } else {
        text += source[i];
        i += 1;
      }
    }
    if (text) { pieces.push({ text: text }); }
    return pieces;
  }

  function closing(source, open, close, start) {
    var end = source.indexOf(close, start);
    return end < 0 ? null : { tex: source.slice(start, end), end: end + close.length };
  }

  function matchAt(s, i, inline) {
    var c = s[i];
    if (c === "\\" && (s[i + 1] === "(" || s[i + 1] === "[")) {
      var found = closing(s, s.slice(i, i + 2), s[i + 1] === "(" ? "\\)" : "\\]", i + 2);
      if (found) { found.display = s[i + 1] === "[" && !inline; }
      return found;
    }
    if (c !== "$" || (i > 0 && s[i - 1] === "\\")) {
      return null;
    }
    if (s[i + 1] === "$") {
      var block = closing(s, "$$", "$$", i + 2);
      if (block) { block.display = !inline; }
      return block;
    }
    if (!s[i + 1] || /\s/.test(s[i + 1])) {
      return null;
    }
    for (var j = i + 1; j < s.length; j++) {
      if (s[j] === "$" && s[j - 1] !== "\\") {
        if (/\s/.test(s[j - 1]) || /[0-9]/.test(s[j + 1] || "")) {
          return null;
        }
        return { tex: s.slice(i + 1, j), end: j + 1, display: false };
      }
    }
    return null;
  }

  function typeset(node, inline) {
    var pieces = split(node.nodeValue, inline);
    if (pieces.length === 1 && pieces[0].text !== undefined) {
      return;
    }
    var fragment = document.createDocumentFragment();
    pieces.forEach(function (piece) {
      if (piece.text !== undefined) {
        fragment.appendChild(document.createTextNode(piece.text));
        return;
      }
      var span = document.createElement("span");
      try {
        window.katex.render(piece.tex, span, {
          displayMode: piece.display,
          throwOnError: false,
          trust: false,  // no \href, \url or HTML extensions
          strict: "ignore"
        });
      } catch (err) {
        span.textContent = piece.display ? "$$" + piece.tex + "$$" : "$" + piece.tex + "$";
      }
      fragment.appendChild(span);
    });
    node.parentNode.replaceChild(fragment, node);
  }

  function renderMath() {
    if (!window.katex) {
      return;
    }
    var elements = document.querySelectorAll(".math");
    for (var i = 0; i < elements.length; i++) {
      var inline = elements[i].getAttribute("data-math") === "inline";
      var walker = document.createTreeWalker(elements[i], NodeFilter.SHOW_TEXT);
      var nodes = [];
      while (walker.nextNode()) { nodes.push(walker.currentNode); }
      nodes.forEach(function (node) { typeset(node, inline); });
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", renderMath);
  } else {
    renderMath();
  }
})();
