"""What running on Azure needs from the code: the OpenAPI document API Management imports."""
