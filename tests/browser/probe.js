// Injected with Page.addScriptToEvaluateOnNewDocument: runs in every frame
// before any script of the page. Records every call a payload typically makes
// and every CSP violation; the test reads window.__feedsProbe after load.
(() => {
  if (window.__feedsProbe) return;
  const state = { calls: [] };
  Object.defineProperty(window, "__feedsProbe", { value: state });
  const show = (args) => {
    try {
      return Array.prototype.map.call(args, (a) => String(a)).join(", ").slice(0, 200);
    } catch (e) {
      return "?";
    }
  };
  const record = (what, args) => {
    state.calls.push(`${what}(${show(args)}) in ${location.href}`);
    window.__executed = true;
  };
  const wrap = (owner, name, when) => {
    const original = owner[name];
    if (typeof original !== "function") return;
    const wrapper = function () {
      if (!when || when(arguments)) record(name, arguments);
      return original.apply(this, arguments);
    };
    wrapper.prototype = original.prototype;
    owner[name] = wrapper;
  };
  for (const name of ["alert", "confirm", "prompt", "print", "eval", "Function", "open", "fetch"]) wrap(window, name);
  for (const name of ["setTimeout", "setInterval"]) wrap(window, name, (args) => typeof args[0] === "string");
  for (const name of ["write", "writeln"]) wrap(Document.prototype, name);
  document.addEventListener(
    "securitypolicyviolation",
    (e) => state.calls.push(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline"} ${e.sample || ""}`.trim()),
    true,
  );
})();
//# sourceURL=__feeds_probe__.js
