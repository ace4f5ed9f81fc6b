// Live count of characters and SMS parts under an SMS template (GSM-7: 160/153,
// UCS-2: 70/67 per part), the same rule as the server's render.sms_length.
(function () {
  const GSM = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
  const EXT = "^{}\\[~]|€\f";
  function count(text) {
    let gsm = true, units = 0;
    for (const c of text) { if (!GSM.includes(c) && !EXT.includes(c)) { gsm = false; break; } }
    if (gsm) { for (const c of text) units += EXT.includes(c) ? 2 : 1; }
    else { for (const c of text) units += c.codePointAt(0) > 0xffff ? 2 : 1; }
    const single = gsm ? 160 : 70, multi = gsm ? 153 : 67;
    const parts = units === 0 ? 0 : units <= single ? 1 : Math.ceil(units / multi);
    return { units, parts, enc: gsm ? "GSM-7" : "UCS-2" };
  }
  document.querySelectorAll("textarea[data-sms-counter]").forEach((area) => {
    const out = document.getElementById(area.dataset.smsCounter);
    const update = () => {
      const r = count(area.value);
      out.textContent = `${r.units} ${out.dataset.chars} · ${r.parts} ${out.dataset.parts} · ${r.enc}`;
    };
    area.addEventListener("input", update);
    update();
  });
})();
