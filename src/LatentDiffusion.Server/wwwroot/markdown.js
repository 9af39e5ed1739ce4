// Renders the Markdown that `ldm study` writes (headings, paragraphs, tables, lists, images, emphasis, code): the
// report is the project's own output, so a full Markdown engine is not needed. Everything is escaped before any tag is made.
"use strict";
const Markdown = (() => {
  const esc = s => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

  function inline(text, image) {
    return esc(text)
      .replace(/!\[([^\]]*)\]\(([^)\s]+)\)/g, (_, alt, src) => `<img alt="${alt}" src="${esc(image(src))}">`)
      .replace(/`([^`]+)`/g, "<code>$1</code>")
      .replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>")
      .replace(/(^|[\s(])\*([^*\s][^*]*)\*/g, "$1<em>$2</em>");
  }

  // image(src) maps a path in the report to a URL the server answers.
  function render(md, image) {
    const lines = md.replace(/\r/g, "").split("\n");
    const out = [];
    for (let i = 0; i < lines.length;) {
      const line = lines[i];
      if (/^\s*$/.test(line)) { i++; continue; }
      const h = /^(#{1,6})\s+(.*)$/.exec(line);
      if (h) { out.push(`<h${h[1].length + 1}>${inline(h[2], image)}</h${h[1].length + 1}>`); i++; continue; }
      if (line.startsWith("|")) {
        const rows = [];
        while (i < lines.length && lines[i].startsWith("|")) rows.push(lines[i++]);
        const cells = r => r.replace(/^\|/, "").replace(/\|\s*$/, "").split("|").map(c => c.trim());
        const body = rows.filter((r, k) => !(k === 1 && /^\|[\s:|-]+$/.test(r)));
        out.push("<table>" + body.map((r, k) => "<tr>" + cells(r).map(c => k === 0 ? `<th>${inline(c, image)}</th>` : `<td>${inline(c, image)}</td>`).join("") + "</tr>").join("") + "</table>");
        continue;
      }
      if (/^\s*[-*]\s+/.test(line)) {
        const items = [];
        while (i < lines.length && /^\s*[-*]\s+/.test(lines[i])) items.push(lines[i++].replace(/^\s*[-*]\s+/, ""));
        out.push("<ul>" + items.map(t => `<li>${inline(t, image)}</li>`).join("") + "</ul>");
        continue;
      }
      const para = [];
      while (i < lines.length && !/^\s*$/.test(lines[i]) && !/^(#|\|)/.test(lines[i])) para.push(lines[i++]);
      out.push(`<p>${inline(para.join(" "), image)}</p>`);
    }
    return out.join("\n");
  }

  return { render };
})();
