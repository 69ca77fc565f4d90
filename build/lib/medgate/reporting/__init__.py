"""Reports: Allure results and the run summary. Nothing here decides a verdict."""
