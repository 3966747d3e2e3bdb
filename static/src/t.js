/* footfall tracker: page views (SPA aware) and forms marked data-footfall-form. Built by
 * scripts/build-tracker.sh into static/t.js, without comments (every byte counts). */
(function (w, d) {
  try {
    var me = d.currentScript || d.querySelector("script[data-site]");
    var site = me && me.getAttribute("data-site");
    if (!site || w.__footfall) return;
    w.__footfall = 1;
    var base = new URL(me.src).origin;
    var ls, vid, last, done = Promise.resolve(), sent = done, F = HTMLFormElement.prototype;
    // Storage can throw (a sandboxed frame, blocked cookies): t.js then keeps nothing.
    try { ls = w.localStorage; } catch (e) {}
    // Consent and opt-out, as the site's snippet says: data-consent="<days>" waits for
    // footfall('consent', true) (remembered that many days in the ff_consent cookie);
    // data-opt-out honours Global Privacy Control (the server honours Sec-GPC and DNT too).
    // Until `on`, nothing is sent or stored, and a form is sent without the browser.
    var days = me.getAttribute("data-consent"),
      off = me.getAttribute("data-opt-out") && navigator.globalPrivacyControl,
      on = !off && (!days || /ff_consent=1/.test(d.cookie));

    // The signed visitor id: first-party cookie on the site, localStorage as a backup.
    function read() {
      var m = d.cookie.match(/(?:^|; )ff_vid=([^;]*)/);
      try { return m ? decodeURIComponent(m[1]) : ls && ls.getItem("ff_vid"); } catch (e) { return null; }
    }
    function cookie(k, v, age) {
      d.cookie = k + "=" + v + "; path=/; max-age=" + age + "; samesite=lax" +
        (/^https:/.test(location) ? "; secure" : "");
    }
    function keep(v) {
      if (!v || !on) return;
      vid = v;
      cookie("ff_vid", encodeURIComponent(v), 34128000);
      try { ls && ls.setItem("ff_vid", v); } catch (e) {}
    }
    function post(path, body) {
      return fetch(base + path, {
        method: "POST", body: JSON.stringify(body), keepalive: true, credentials: "include"
      });
    }

    // One beacon per distinct URL. Without an id, a beacon waits for the one before it to
    // answer, so that a new id being minted reaches every later beacon; with one, it goes
    // at once (a stalled request holds nothing up). A history-API view's referrer is the
    // page before it.
    function view() {
      var url = location.href, beacon = { site: site, url: url, referrer: last || d.referrer, title: d.title };
      // (A prerendered page is not seen until it is shown.)
      if (url == last || !on || d.prerendering) return;
      last = url;
      function send() {
        // (An answer without an id, a 204 or a refusal, keeps nothing.)
        beacon.vid = vid;
        return on && post("/v1/collect", beacon)
          .then(function (r) { return r.json(); }).then(function (j) { keep(j.vid); });
      }
      sent = (vid ? done : sent).then(send).catch(function () {});
    }

    // Forgets the id on this page and in its storage; the HttpOnly copy is footfall's
    // (`/v1/forget`).
    function wipe() {
      vid = last = null;
      cookie("ff_vid", "", 0);
      cookie("ff_consent", "", 0);
      try { ls.removeItem("ff_vid"); } catch (e) {}
    }

    // An id kept from before (an expired consent, an opt-out since) is neither used nor
    // kept without consent.
    vid = read();
    on || wipe();
    ["pushState", "replaceState"].forEach(function (f) {
      var orig = history[f];
      history[f] = function () {
        setTimeout(view);
        return orig.apply(this, arguments);
      };
    });
    w.addEventListener("popstate", view);
    // A page restored from the back-forward cache is seen again (unless its consent was
    // withdrawn on another page since: then it forgets the id too); a prerendered one only
    // once it is shown.
    w.addEventListener("pageshow", function (e) {
      if (e.persisted) (on = on && (!days || /ff_consent=1/.test(d.cookie))) || wipe(), last = 0, view();
    });
    d.addEventListener("prerenderingchange", view);
    view();

    // Commands: footfall('visitor_uid', cb) hands the page the signed visitor id (once the
    // first beacon has minted it), the value a site's backend passes to the API. Calls made
    // before the script loaded (window.footfall = [[…]], or a stub's .q) run now.
    // footfall('consent', true) starts tracking (and remembers it); false stops it and
    // removes footfall's cookies and storage.
    function cmd(name, cb) {
      if (name == "visitor_uid") (vid ? done : sent).then(function () { cb && cb(vid || null); });
      if (name == "consent") {
        var was = on || vid;
        on = !off && cb;
        if (on) cookie("ff_consent", 1, 864e2 * days), vid = read(), view();
        else {
          // The server's copy of the id is HttpOnly (and may be the only one the browser
          // kept): footfall expires it, asked when tracking was on or there is an id, so a
          // refusal before any consent sends nothing. The page forgets the id and the
          // last page too, so that a later consent starts anew.
          // (Now, and again after any beacon still minting, whose answer may set it anew.)
          if (was) [done, sent].forEach(function (p) { p.then(function () { post("/v1/forget", {}).catch(function () {}); }); });
          wipe();
        }
      }
    }
    var q = w.footfall;
    w.footfall = cmd;
    q = q && (q.q || q);
    if (q && q.forEach) q.forEach(function (a) { cmd.apply(null, a); });

    // Forms are sent as JSON; if that fails outright, the browser posts them as HTML.
    // Heard after the page's own handlers: a form the page stopped (its validation, a
    // captcha that submits later) is not sent.
    d.addEventListener("submit", function (e) {
      var f = e.target, id = f.getAttribute && f.getAttribute("data-footfall-form");
      if (!id || f.__ff || e.defaultPrevented) return;
      e.preventDefault();
      // Only the fields the form maps (name, phone, email) and footfall's own ff_*; never a
      // password or a hidden field (a CSRF token, say) of the site.
      var fields = {}, skip = [];
      [].forEach.call(f.elements, function (el) {
        var k = el.name, t = el.type;
        if (!k || el.disabled) return;
        if (/^ff_/.test(k) || /^(name|phone|email)$/.test(k) && !/^(password|hidden)$/.test(t)) {
          if (!/^(checkbox|radio)$/.test(t) || el.checked) fields[k] = el.value;
        } else skip.push(el);
      });
      var path = "/v1/forms/" + encodeURIComponent(id) + "/submit";
      // As a beacon, the post waits for an id being minted: the form links that browser.
      (vid ? done : sent).then(function () { return post(path, { vid: vid, nc: !on, page: location.href, fields: fields }); })
        .then(function (r) {
          return r.json().then(function (j) {
            var ok = r.ok, ev = new CustomEvent("footfall:" + (ok ? "submitted" : "error"), { detail: j, bubbles: true });
            if (ok) keep(j.vid);
            f.dispatchEvent(ev);
            if (ok && j.redirect) location.href = j.redirect;
            else if (ok) F.reset.call(f);
          });
        })
        .catch(function () {
          f.__ff = 1;
          // The browser's own post carries the same fields as the JSON one.
          skip.forEach(function (el) { el.disabled = true; });
          [["ff_vid", vid], ["ff_page", location.href], ["ff_nc", on ? "" : 1]].forEach(function (p) {
            var i = d.createElement("input");
            i.type = "hidden"; i.name = p[0]; i.value = p[1] || "";
            f.appendChild(i);
          });
          if (!f.getAttribute("action")) f.action = base + path;
          // A form's own fields may shadow its methods (a button named "submit"); a file
          // input's multipart encoding is one footfall does not read.
          f.method = "post";
          f.enctype = "application/x-www-form-urlencoded";
          F.submit.call(f);
        });
    });
  } catch (e) {}
})(window, document);
