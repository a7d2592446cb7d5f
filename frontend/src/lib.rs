//! The browser half: hydrates the HTML the server rendered, so pages that already work
//! without JavaScript gain in-place updates when it is on.

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // Every page is a lazy route (its code is a chunk of the bundle): hydration waits for
    // the page's chunk, then walks the server's HTML.
    let _ = any_spawner::Executor::init_wasm_bindgen();
    leptos::task::spawn_local(async {
        leptos::mount::hydrate_from_async(leptos::tachys::dom::body(), app::App)
            .await
            .forget();
        app::forget_form_error_in_address();
        // The server draws the next pages in this browser's time zone.
        app::time_zone::remember_browser_zone();
        // A mark for tests and the bundle benchmark: the page is interactive from here.
        if let Some(root) = leptos::prelude::document().document_element() {
            let _ = root.set_attribute("data-hydrated", "");
        }
    });
}
