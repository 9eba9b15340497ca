"""Small Streamlit helpers shared by the pages (no engine logic here)."""
