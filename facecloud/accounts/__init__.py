from facecloud.accounts.service import AccountInfo, Accounts, Credentials, SigningKey

__all__ = ["AccountInfo", "Accounts", "Credentials", "SigningKey"]
