//! The browser half: hydrates the HTML the server rendered, so pages that already work
//! without JavaScript gain in-place updates when it is on.

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
    // The server draws the next pages in this browser's time zone.
    app::time_zone::remember_browser_zone();
    // A mark for tests and the bundle benchmark: the page is interactive from here.
    if let Some(root) = leptos::prelude::document().document_element() {
        let _ = root.set_attribute("data-hydrated", "");
    }
}
