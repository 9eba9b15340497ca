from tests.browser import chromium_page, streamlit_server


def test_app_serves_explore_page(seeded_db):
    with streamlit_server(seeded_db) as url, chromium_page() as page:
        page.goto(url)
        page.get_by_role("heading", name="Explore").wait_for()
