// Evaluated after load (Runtime.evaluate): audits the DOM *as the browser
// parsed it*, fires hover/focus events at the article body, and returns what
// the injected probe recorded. Returns {calls: [...], audit: [...]}.
function (allowedTags, frameHosts) {
  const audit = [];
  const allowed = new Set(allowedTags);
  const URL_ATTRIBUTES = new Set(["href", "src", "poster", "cite", "action", "formaction", "background", "xlink:href", "data", "codebase", "longdesc", "usemap", "dynsrc", "lowsrc", "ping", "manifest", "icon", "srcset", "srcdoc", "archive", "classid"]);
  const SAFE_PROTOCOLS = new Set(["http:", "https:", "mailto:"]);
  const ELEMENTS = new Set(["script", "base", "object", "embed", "applet", "frame", "frameset", "portal", "form", "button", "input", "textarea", "select", "noscript", "template"]);
  const describe = (el) => `<${el.localName}>` + (el.closest("article div.body") ? " in the body" : " outside the body");
  const protocol = (value) => {
    try {
      return new URL(value, document.baseURI).protocol;
    } catch (e) {
      return null; // unparsable: nothing a browser could load or follow
    }
  };
  for (const el of document.querySelectorAll("*")) {
    for (const attr of el.attributes) {
      const name = attr.name.toLowerCase();
      if (name.startsWith("on")) audit.push(`${describe(el)}: event handler ${name}=${JSON.stringify(attr.value)}`);
      if (name === "srcdoc" || name === "srcset") audit.push(`${describe(el)}: ${name}=${JSON.stringify(attr.value)}`);
      else if (URL_ATTRIBUTES.has(name)) {
        const p = protocol(attr.value);
        if (p !== null && !SAFE_PROTOCOLS.has(p)) audit.push(`${describe(el)}: ${name}=${JSON.stringify(attr.value)} (${p})`);
      }
    }
    if (ELEMENTS.has(el.localName)) audit.push(`${describe(el)}: element not expected on an article page`);
    if (el.localName === "meta" && /refresh|set-cookie/i.test(el.getAttribute("http-equiv") || "")) audit.push(`${describe(el)}: http-equiv=${el.getAttribute("http-equiv")}`);
    if (el.localName === "iframe") {
      let ok = false;
      try {
        const u = new URL(el.getAttribute("src") || "", document.baseURI);
        ok = u.protocol === "https:" && frameHosts.some((h) => u.hostname === h || u.hostname.endsWith("." + h));
      } catch (e) {}
      if (!ok) audit.push(`${describe(el)}: iframe to ${JSON.stringify(el.getAttribute("src"))} (not an allowed embed host for this browser)`);
    }
  }
  const bodies = document.querySelectorAll("article div.body");
  if (bodies.length !== 1) audit.push(`expected one article body, found ${bodies.length}`);
  for (const body of bodies) {
    for (const el of body.querySelectorAll("*")) {
      if (el.namespaceURI !== "http://www.w3.org/1999/xhtml") audit.push(`${describe(el)}: foreign element (${el.namespaceURI})`);
      else if (!allowed.has(el.localName)) audit.push(`${describe(el)}: element not in the allowlist`);
      if (el.hasAttribute("style")) audit.push(`${describe(el)}: style attribute`);
    }
    // latent handlers: what a reader's mouse or keyboard would trigger
    for (const el of body.querySelectorAll("*")) {
      for (const type of ["mouseover", "mouseenter", "pointerover", "pointerenter", "focus", "focusin", "toggle", "animationstart"]) {
        el.dispatchEvent(new Event(type, { bubbles: true }));
      }
    }
  }
  const probe = window.__feedsProbe;
  return { calls: probe ? probe.calls.slice() : ["the injected probe is missing: nothing was watched"], audit };
}
