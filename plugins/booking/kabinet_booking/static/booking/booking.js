// The new-order form: the loading and delivery places offer the organization's address
// book (a datalist the page renders when it has saved places).
document.addEventListener("DOMContentLoaded", () => {
  if (!document.getElementById("booking-places")) return;
  for (const id of ["f-origin", "f-destination"]) {
    const input = document.getElementById(id);
    if (input) input.setAttribute("list", "booking-places");
  }
});
